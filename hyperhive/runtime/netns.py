"""Egress networking for one agent: a daemon-made netns plus a supervised slirp4netns.

`--share-net` would also reach host loopback services (the dashboard, other agents' web UIs),
so `egress` agents get their own netns `hh-<agent>` (`ip netns add`) in which slirp4netns
provides a user-mode NAT (`tap0`, 10.0.2.100/24, DNS at 10.0.2.3) with
`--disable-host-loopback`: the host's 127.0.0.1 is unreachable (10.0.2.2 answers "network
unreachable"). bwrap is then started inside that netns with `--share-net`.

`egress` means "the internet, not this host": slirp4netns connects out from the host's own
namespace, so without more the agent would reach every service bound to the host's other
addresses (eth0's, a bridge's). Each egress netns therefore gets a `prohibit` route for every
address of this host (IPv4 /32 and IPv6 /128, all interfaces), which the agent (no
capabilities) cannot remove; `HostAddressGuard` keeps them current by re-applying them to every
egress netns when `ip monitor address` reports a change on the host.

Invariants:
- slirp4netns runs detached (new session, log in `log_dir/slirp4netns.log`), so the agent keeps
  its network across a daemon restart; its pid is recorded and re-adopted.
- While the agent runs, a supervisor task restarts slirp4netns if it dies (at most
  `MAX_RESTARTS` in `RESTART_WINDOW` seconds, then it logs an error and gives up).
- `teardown` is idempotent: stops slirp4netns and deletes the netns.
- Needs root (`ip netns add`); otherwise `create` raises `Unavailable`.
- The host-address routes are in place before `create` returns (before bwrap starts): a
  failure to add them is a failure to create the network.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from hyperhive.errors import Unavailable
from hyperhive.names import validate_name
from hyperhive.runtime.hostproc import (
    kill_and_reap,
    open_pidfd,
    proc_cmdline,
    proc_stat,
    read_until_eof,
    reap,
    spawn_detached,
    wait_readable,
    which,
)

logger = logging.getLogger(__name__)

NETNS_DIR = Path("/run/netns")
READY_TIMEOUT = 10.0
MAX_RESTARTS = 5
RESTART_WINDOW = 60.0
SLIRP_DNS = "10.0.2.3"


def netns_name(agent: str, scope: str = "") -> str:
    """`hh-<agent>`, or `hh-<scope>-<agent>` so several hives on one host never share one."""
    return f"hh-{scope}-{validate_name(agent)}" if scope else f"hh-{validate_name(agent)}"


def slirps_for(path: Path) -> list[int]:
    """Pids of every slirp4netns serving the netns at `path` (strays included)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        cmd = proc_cmdline(int(entry))
        if cmd and os.path.basename(cmd[0]) == "slirp4netns" and str(path) in cmd:
            found.append(int(entry))
    return found


async def _kill_strays(path: Path, keep: int | None = None) -> None:
    for pid in slirps_for(path):
        if pid == keep:
            continue
        st = proc_stat(pid)
        fd = open_pidfd(pid, st[1] if st else None)
        if fd is None:
            continue
        try:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(fd, signal.SIGKILL)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wait_readable(fd), 5.0)
        finally:
            os.close(fd)
        reap(pid)


async def _run(argv: list[str], stdin: bytes | None = None) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    out, _ = await proc.communicate(stdin)
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace").strip()


async def host_addresses() -> set[str]:
    """Every address of this host (all interfaces, both families), as `addr/prefix` host
    routes; loopback ones too (slirp4netns blocks 127.0.0.1 already; this is belt and braces)."""
    code, out = await _run([which("ip"), "-j", "addr", "show"])
    if code != 0:
        raise Unavailable(f"ip addr show failed: {out}")
    found: set[str] = set()
    for iface in json.loads(out or "[]"):
        for a in iface.get("addr_info", []):
            local = a.get("local")
            if not isinstance(local, str):
                continue
            with contextlib.suppress(ValueError):
                addr = ipaddress.ip_address(local.split("%")[0])
                found.add(f"{addr}/{addr.max_prefixlen}")
    return found


def _host_route(dst: str) -> str | None:
    with contextlib.suppress(ValueError):
        net = ipaddress.ip_network(dst, strict=False)
        if net.prefixlen == net.max_prefixlen:
            return f"{net.network_address}/{net.max_prefixlen}"
    return None


async def blocked_routes(netns: str) -> set[str]:
    """The host routes of type `prohibit` in `netns` (both families)."""
    found: set[str] = set()
    for family in ("-4", "-6"):
        code, out = await _run(
            [which("ip"), family, "-n", netns, "-j", "route", "show", "type", "prohibit"]
        )
        if code != 0:
            continue
        with contextlib.suppress(ValueError):
            for route in json.loads(out or "[]"):
                dst = _host_route(str(route.get("dst", "")))
                if dst is not None:
                    found.add(dst)
    return found


async def block_host(netns: str, addresses: set[str]) -> None:
    """Make the `prohibit` routes in `netns` exactly `addresses`. An IPv4 route that cannot be
    added is an error; IPv6 ones are best-effort (a netns without IPv6 cannot route it)."""
    current = await blocked_routes(netns)
    ip = which("ip")
    for family, want in (("-4", 4), ("-6", 6)):
        add = sorted(a for a in addresses - current if ipaddress.ip_network(a).version == want)
        if add:
            batch = "".join(f"route replace prohibit {a}\n" for a in add).encode()
            code, out = await _run([ip, family, "-n", netns, "-force", "-batch", "-"], batch)
            if code != 0 and want == 4:
                raise Unavailable(f"cannot block this host's addresses in netns {netns}: {out}")
            if code != 0:
                logger.warning(
                    "netns %s: IPv6 host routes not added: %s",
                    netns,
                    out,
                    extra={"action": "netns_block_v6"},
                )
    stale = current - addresses
    if stale:
        batch = "".join(f"route del prohibit {a}\n" for a in sorted(stale)).encode()
        await _run([ip, "-n", netns, "-force", "-batch", "-"], batch)


class HostAddressGuard:
    """Keeps every egress netns's `prohibit` routes equal to this host's addresses: runs
    `ip -o monitor address` and, after each change it reports, re-applies them everywhere.
    A named task, restarted (with a pause) if the monitor dies; `aclose` stops it."""

    RETRY = 5.0

    def __init__(self, netns_names: Callable[[], list[str]]) -> None:
        self._names = netns_names
        self._task: asyncio.Task[None] | None = None
        self.applied = 0  # passes done (tests wait on it)

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="netns-host-guard"
            )

    async def apply(self) -> None:
        addrs = await host_addresses()
        for name in self._names():
            try:
                await block_host(name, addrs)
            except Unavailable as exc:
                logger.error("%s", exc, extra={"action": "netns_block_failed"})
        self.applied += 1

    async def _run(self) -> None:
        while True:
            proc = await asyncio.create_subprocess_exec(
                which("ip"),
                "-o",
                "monitor",
                "address",
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
            assert proc.stdout is not None
            try:
                await self.apply()  # anything that changed before the monitor listened
                while await proc.stdout.readline():
                    with contextlib.suppress(TimeoutError):  # a burst of changes: one pass
                        while await asyncio.wait_for(proc.stdout.readline(), 0.2):
                            pass
                    await self.apply()
            finally:
                if proc.returncode is None:
                    proc.kill()
                await proc.wait()
            logger.warning(
                "ip monitor address ended; restarting it", extra={"action": "netns_guard_restart"}
            )
            await asyncio.sleep(self.RETRY)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


class EgressNet:
    """The netns and slirp4netns of one agent."""

    def __init__(self, agent: str, log_dir: Path, scope: str = "") -> None:
        self.agent = validate_name(agent)
        self.name = netns_name(agent, scope)
        self.path = NETNS_DIR / self.name
        self.log_path = log_dir / "slirp4netns.log"
        self.slirp_pid: int | None = None
        self.slirp_ticks: int | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._stopping = False
        self._restarts: list[float] = []
        self.on_restart: Callable[[], None] | None = None  # e.g. re-record the new pid

    def record(self) -> dict[str, object]:
        return {"netns": self.name, "slirp_pid": self.slirp_pid, "slirp_ticks": self.slirp_ticks}

    def _log(self, level: int, msg: str, action: str, *args: object) -> None:
        logger.log(level, msg, *args, extra={"action": action, "agent": self.agent})

    async def create(self) -> None:
        """Create the netns (replacing a stale one) and start slirp4netns in it."""
        if os.geteuid() != 0:
            raise Unavailable("network = 'egress' needs the daemon to run as root (ip netns add)")
        ip = which("ip")
        await _kill_strays(self.path)  # left by an agent that ended while no daemon watched
        if self.path.exists():
            await self._delete_netns()
        code, out = await _run([ip, "netns", "add", self.name])
        if code != 0:
            raise Unavailable(f"ip netns add {self.name} failed: {out}")
        try:
            await block_host(self.name, await host_addresses())  # before anything runs in it
            await self._start_slirp()
        except BaseException:
            await self._delete_netns()
            raise

    async def _start_slirp(self) -> None:
        read_end, write_end = os.pipe()
        argv = [
            which("slirp4netns"),
            "--configure",
            "--disable-host-loopback",
            "--netns-type=path",
            "--ready-fd=3",
            str(self.path),
            "tap0",
        ]
        try:
            pid = spawn_detached(
                argv, {"PATH": "/usr/sbin:/usr/bin"}, self.log_path, {3: write_end}
            )
        finally:
            os.close(write_end)
        try:
            ready = await read_until_eof(read_end, READY_TIMEOUT)
        except TimeoutError:
            ready = b""
        finally:
            os.close(read_end)
        if not ready.startswith(b"1"):
            await kill_and_reap(pid)
            raise Unavailable(f"slirp4netns for {self.agent} did not come up (see {self.log_path})")
        st = proc_stat(pid)
        self.slirp_pid, self.slirp_ticks = pid, (st[1] if st else None)
        self._log(logging.INFO, "egress network up (slirp4netns pid %d)", "netns_up", pid)

    def adopt(self, slirp_pid: object, slirp_ticks: object) -> bool:
        """Re-attach to the slirp4netns a previous daemon started; False if it is gone."""
        if not isinstance(slirp_pid, int) or not isinstance(slirp_ticks, int):
            return False
        fd = open_pidfd(slirp_pid, slirp_ticks)
        if fd is None:
            return False
        os.close(fd)
        if str(self.path) not in proc_cmdline(slirp_pid):
            return False
        self.slirp_pid, self.slirp_ticks = slirp_pid, slirp_ticks
        return True

    async def ensure(self) -> None:
        """After adoption: restart slirp4netns if it is not running (the netns must exist);
        bring the host-address routes up to date."""
        if self.path.exists():
            await block_host(self.name, await host_addresses())
        if self.slirp_pid is None:
            if not self.path.exists():
                raise Unavailable(f"netns {self.name} vanished; restart the agent")
            self._log(logging.WARNING, "slirp4netns was gone; restarting it", "netns_restart")
            await _kill_strays(self.path)
            await self._start_slirp()

    def supervise(self) -> None:
        """Keep slirp4netns alive until `teardown`."""
        if self._supervisor is None or self._supervisor.done():
            self._supervisor = asyncio.get_running_loop().create_task(
                self._supervise(), name=f"slirp-supervisor-{self.agent}"
            )

    async def _supervise(self) -> None:
        while not self._stopping and self.slirp_pid is not None:
            fd = open_pidfd(self.slirp_pid, self.slirp_ticks)
            if fd is not None:
                try:
                    await wait_readable(fd)
                finally:
                    os.close(fd)
                reap(self.slirp_pid)
            if self._stopping:
                return
            now = time.monotonic()
            self._restarts = [t for t in self._restarts if now - t < RESTART_WINDOW]
            if len(self._restarts) >= MAX_RESTARTS:
                self._log(logging.ERROR, "slirp4netns keeps dying; egress is down", "netns_give_up")
                return
            self._restarts.append(now)
            self._log(logging.WARNING, "slirp4netns died; restarting it", "netns_restart")
            try:
                await self._start_slirp()
            except Unavailable as exc:
                self._log(logging.ERROR, "cannot restart slirp4netns: %s", "netns_give_up", exc)
                return
            if self.on_restart is not None:
                self.on_restart()

    async def detach(self) -> None:
        """Stop supervising (daemon shutdown); slirp4netns keeps running."""
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
            self._supervisor = None

    async def teardown(self) -> None:
        """Stop slirp4netns and delete the netns. Idempotent."""
        self._stopping = True
        await self.detach()
        if self.slirp_pid is not None:
            fd = open_pidfd(self.slirp_pid, self.slirp_ticks)
            if fd is not None:
                try:
                    signal.pidfd_send_signal(fd, signal.SIGTERM)
                    try:
                        await asyncio.wait_for(wait_readable(fd), 2.0)
                    except TimeoutError:
                        signal.pidfd_send_signal(fd, signal.SIGKILL)
                        await wait_readable(fd)
                except ProcessLookupError:
                    pass
                finally:
                    os.close(fd)
            reap(self.slirp_pid)
            self.slirp_pid = None
        await _kill_strays(self.path)
        await self._delete_netns()

    async def _delete_netns(self) -> None:
        if not self.path.exists():
            return
        code, out = await _run([which("ip"), "netns", "delete", self.name])
        if code != 0:
            self._log(
                logging.WARNING, "cannot delete netns %s: %s", "netns_delete_failed", self.name, out
            )
        else:
            self._log(logging.INFO, "egress network down", "netns_down")
