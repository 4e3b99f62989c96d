"""`BwrapRuntime`: one bubblewrap sandbox per agent.

Inside: the host's /usr and a few /etc files read-only, a synthesized passwd/group naming the
agent's uid (home /state), the python prefix, venv, hyperhive source and claude binary
read-only at their host paths, `/state` (cwd, HOME) and `/shared` writable, `/run/hive` = the
agent's socket directory (the directory is bound, so a restarted daemon's new socket shows up;
root's, so the agent cannot squat the core's sockets; only `/run/hive/web/` is the agent's),
a private /tmp, own pid/ipc/uts/mount/net/cgroup namespaces, hostname `agent-<name>`, no
capabilities, no new privileges, a fresh environment, and a seccomp filter that refuses nested
user namespaces (`runtime.seccomp`; `allow_user_namespaces = true` in the agent's config lifts
it).

Privileges (measured on Debian 12, see shared/reference/sandbox.md):
- daemon is root: bwrap runs as root WITHOUT a user namespace (so `--uid` can never map the
  agent to host root), mounts what it needs, and the command is wrapped in `setpriv` which drops
  to `spec.uid` for good (no groups, empty bounding set, no-new-privs). Dropping *before* bwrap
  does not work with a python under /root (0700): bwrap canonicalizes bind sources with the
  caller's uid and fails with EACCES, even for `--ro-bind-fd`.
- daemon is not root: plain unprivileged bwrap (`--unshare-all`, user namespace included) as the
  daemon's own uid; no cgroups, no egress.

Network: `none` = own empty netns (loopback only); `host` = `--share-net`; `egress` = bwrap is
entered into a daemon-made netns with slirp4netns (`netns.EgressNet`): the internet, not this
host (its loopback and every address of its interfaces are unreachable, kept current by
`netns.HostAddressGuard`).

Lifecycle (spawn, logs, exit status, adoption): `process.SupervisedRuntime`. bwrap reports the
agent's pid on `--info-fd` and its exit on `--json-status-fd` into `log_dir/status.json`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hyperhive import safefs
from hyperhive.claudebin import claude_binary_or_none
from hyperhive.errors import NotFound, Unavailable
from hyperhive.paths import WEB_DIR
from hyperhive.runtime.base import LaunchSpec
from hyperhive.runtime.cgroups import AgentCgroup
from hyperhive.runtime.hostproc import (
    iter_json,
    launcher_argv,
    pid_alive,
    proc_stat,
    read_json,
    wait_readable,
    which,
    write_json,
)
from hyperhive.runtime.netns import SLIRP_DNS, EgressNet, HostAddressGuard
from hyperhive.runtime.seccomp import LOADER, no_userns_filter
from hyperhive.runtime.supervised import (
    Launch,
    Sandbox,
    SupervisedRuntime,
    agent_env,
    setpriv_args,
)

logger = logging.getLogger(__name__)

STATE, SOCK, SHARED = Path("/state"), Path("/run/hive"), Path("/shared")
STATUS_NAME = "status.json"
START_TIMEOUT = 30.0
# Host /etc entries the sandbox sees read-only when they exist (resolv.conf only with host net).
ETC_BIND = (
    "nsswitch.conf",
    "ssl",
    "ca-certificates",
    "ca-certificates.conf",
    "alternatives",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    "timezone",
    "os-release",
    "bash.bashrc",
    "profile",
    "profile.d",
    "inputrc",
    "mime.types",
    "protocols",
    "services",
    "gai.conf",
    "host.conf",
    "gitconfig",
    "python3",
    "terminfo",
)
TOP_LEVEL = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")


def _under(path: Path, roots: Iterable[Path]) -> bool:
    return any(path == r or r in path.parents for r in roots)


def claude_binary() -> Path | None:
    """The claude CLI the harness will run (`hyperhive.claudebin`: `HIVE_CLAUDE_BIN` first),
    resolved. A binary named in hive.toml reaches the sandbox as a launch spec bind."""
    return claude_binary_or_none()


def python_binds() -> list[Path]:
    """Host paths the sandbox needs read-only to run this interpreter, its venv, the installed
    hyperhive package (editable or not) and the claude binary — minimal and non-overlapping."""
    import hyperhive

    wanted = [
        Path(sys.base_prefix).resolve(),
        Path(sys.prefix),
        Path(sys.prefix).resolve(),
        Path(sys.executable).resolve().parent,
        Path(hyperhive.__file__).resolve().parent,
    ]
    claude = claude_binary()
    if claude is not None:
        wanted.append(claude)
    system = [Path("/usr")]
    out: list[Path] = []
    for p in sorted(set(wanted), key=lambda p: len(p.parts)):
        if _under(p, system) or _under(p, out) or not p.exists():
            continue
        out.append(p)
    return out


def _passwd(name: str, uid: int) -> bytes:
    return (
        "root:x:0:0:root:/root:/usr/sbin/nologin\n"
        f"{name}:x:{uid}:{uid}:{name}:/state:/bin/bash\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
    ).encode()


def _group(name: str, uid: int) -> bytes:
    return f"root:x:0:\n{name}:x:{uid}:\nnogroup:x:65534:\n".encode()


def _hosts(name: str) -> bytes:
    return f"127.0.0.1\tlocalhost agent-{name}\n::1\tlocalhost ip6-localhost\n".encode()


def _memfd(name: str, data: bytes) -> int:
    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _children(pid: int) -> list[int]:
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


class _Mounts:
    """Builds bwrap mount arguments, creating missing parents 0755 (bwrap's own are 0700)."""

    def __init__(self) -> None:
        self.args: list[str] = []
        self.mounted: list[Path] = []  # binds (their insides exist; nothing can be created)
        self.made: set[Path] = {Path("/")}

    def _parents(self, dest: Path) -> None:
        # below a bind nothing is created; below a tmpfs (/tmp, /run) missing parents are made
        # here, 0755, since bwrap would make them 0700 root and hide what is bound below
        for parent in reversed(dest.parents):
            if parent in self.made or _under(parent, self.mounted):
                continue
            self.args += ["--perms", "0755", "--dir", str(parent)]
            self.made.add(parent)

    def add(self, op: str, source: str, dest: Path) -> None:
        self._parents(dest)
        self.args += [op, source, str(dest)]
        self.mounted.append(dest)
        self.made.add(dest)

    def special(self, op: str, dest: Path) -> None:
        self._parents(dest)
        self.args += [op, str(dest)]
        if op != "--tmpfs":  # a tmpfs is writable: paths below it get their parents made
            self.mounted.append(dest)
        self.made.add(dest)


class BwrapRuntime(SupervisedRuntime):
    """Sandboxes with bubblewrap; see the module docstring for what is inside."""

    name = "bwrap"
    launcher_name = "bwrap"
    isolated = True

    def __init__(
        self,
        *,
        bwrap: str | None = None,
        extra_ro_binds: Iterable[Path] = (),
        cgroup_root: Path | None = None,
        scope: str = "",
    ) -> None:
        super().__init__(cgroup_root=cgroup_root, scope=scope)
        self.bwrap = bwrap or which("bwrap")
        self.binds = [*python_binds(), *extra_ro_binds]
        self._nets: dict[str, EgressNet] = {}
        # keeps each egress netns's routes to this host's addresses blocked as they change
        self._guard = HostAddressGuard(lambda: [n.name for n in self._nets.values()])

    # -- command construction
    def _uid(self, spec: LaunchSpec) -> int:
        if os.geteuid() == 0:
            if spec.uid is None or spec.uid == 0:
                raise Unavailable(f"agent {spec.name!r}: a root daemon needs a non-zero spec.uid")
            return spec.uid
        return os.getuid()

    def env(self, spec: LaunchSpec) -> dict[str, str]:
        """The agent's environment inside the sandbox."""
        venv_bin = [f"{sys.prefix}/bin"] if sys.prefix != sys.base_prefix else []
        env = {
            "PATH": ":".join([*venv_bin, "/usr/local/bin", "/usr/bin", "/bin"]),
            "LANG": "C.UTF-8",
            "TMPDIR": "/tmp",
            **agent_env(spec, state=STATE, sock=SOCK, shared=SHARED),
        }
        env.update(spec.env)
        return env

    def sandbox_argv(
        self, spec: LaunchSpec, data_fds: dict[str, int], seccomp_fd: int | None = None
    ) -> list[str]:
        """The bwrap command line (without launcher). `data_fds` maps /etc file names to the fds
        their synthesized content is read from; fd 3 = status file, fd 4 = info pipe;
        `seccomp_fd` holds the compiled filter (`runtime.seccomp`)."""
        root = os.geteuid() == 0
        m = _Mounts()
        m.add("--ro-bind", "/usr", Path("/usr"))
        for top in TOP_LEVEL:
            host = Path("/") / top
            if host.is_symlink():
                m.args += ["--symlink", os.readlink(host), str(host)]
                m.made.add(host)
            elif host.is_dir():
                m.add("--ro-bind", str(host), host)
        # private /proc, /dev, /tmp, /run first: binds that live below them on the host (a venv
        # or checkout under /tmp, say) are then mounted on top instead of being hidden
        m.special("--proc", Path("/proc"))
        m.special("--dev", Path("/dev"))
        m.args += ["--perms", "1777"]  # a root bwrap makes tmpfs 0755 root: unusable by the agent
        m.special("--tmpfs", Path("/tmp"))
        m.args += ["--perms", "1777"]
        m.special("--tmpfs", Path("/dev/shm"))
        m.special("--tmpfs", Path("/run"))
        etc = Path("/etc")
        for entry in ETC_BIND:
            if (etc / entry).exists():
                m.add("--ro-bind", str(etc / entry), etc / entry)
        if spec.network == "host" and (etc / "resolv.conf").exists():
            m.add("--ro-bind", "/etc/resolv.conf", etc / "resolv.conf")
        for fname, fd in data_fds.items():
            m.args += ["--perms", "0644"]  # bwrap's default for data files is 0600 (root's)
            m.add("--ro-bind-data", str(fd), etc / fname)
        for path in self.binds:
            m.add("--ro-bind", str(path), path)
        for host_path, inside in spec.ro_binds:
            m.add("--ro-bind", str(host_path), inside)
        m.add("--bind", str(spec.sock_dir), SOCK)
        m.add("--bind", str(spec.state_dir), STATE)
        m.add("--bind", str(spec.shared_dir), SHARED)
        for host_path, inside in spec.rw_binds:
            m.add("--bind", str(host_path), inside)

        if root:
            # no user namespace: a root bwrap with one would map the agent to host root
            ns = ["--unshare-ipc", "--unshare-pid", "--unshare-uts", "--unshare-cgroup-try"]
        else:
            ns = ["--unshare-all", "--cap-drop", "ALL"]
        if spec.network == "none":
            ns.append("--unshare-net")
        elif "--unshare-all" in ns:
            ns.append("--share-net")
        argv = [
            self.bwrap,
            *ns,
            "--new-session",
            "--hostname",
            f"agent-{spec.name}",
            *m.args,
            "--remount-ro",
            "/",
            "--chdir",
            str(STATE),
            "--clearenv",
        ]
        for key, value in self.env(spec).items():
            argv += ["--setenv", key, value]
        if seccomp_fd is not None:
            argv += ["--seccomp", str(seccomp_fd)]
        argv += ["--json-status-fd", "3", "--info-fd", "4", "--"]
        if root:
            argv += ["/usr/bin/setpriv", *setpriv_args(self._uid(spec)), "--"]
        return [*argv, *spec.argv]

    # -- SupervisedRuntime hooks
    def _reset_files(self, spec: LaunchSpec) -> None:
        super()._reset_files(spec)
        (spec.log_dir / STATUS_NAME).unlink(missing_ok=True)

    def _exit_from_files(self, spec: LaunchSpec) -> int | None:
        code = super()._exit_from_files(spec)
        if code is not None:
            return code
        try:
            raw = (spec.log_dir / STATUS_NAME).read_bytes()
        except OSError:
            return None
        for doc in reversed(iter_json(raw)):
            if isinstance(doc, dict) and isinstance(doc.get("exit-code"), int):
                return int(doc["exit-code"])
        return None

    def _prepare_dirs(self, spec: LaunchSpec, uid: int) -> None:
        for d in (spec.state_dir, spec.sock_dir, spec.shared_dir):
            d.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            safefs.own_dir(spec.state_dir, uid, uid, 0o700)
            # /run/hive is the core's (the agent can neither remove nor squat hive.sock or
            # model.sock); the harness serves its page from web/, the agent's own directory
            safefs.own_dir(spec.sock_dir, 0, 0, 0o755)
            safefs.own_dir(spec.sock_dir / WEB_DIR, uid, uid, 0o700)

    async def _launch(self, spec: LaunchSpec, cgroup: AgentCgroup) -> Launch:
        uid = self._uid(spec)
        self._prepare_dirs(spec, uid)
        data = {"passwd": _passwd(spec.name, uid), "group": _group(spec.name, uid)}
        data["hosts"] = _hosts(spec.name)
        if spec.network != "host":
            data["resolv.conf"] = (
                f"nameserver {SLIRP_DNS}\n".encode() if spec.network == "egress" else b""
            )
        fds: dict[int, int] = {}
        data_fds: dict[str, int] = {}
        record: dict[str, Any] = {}
        net: EgressNet | None = None
        try:
            for i, (fname, content) in enumerate(data.items()):
                fds[5 + i] = _memfd(fname, content)
                data_fds[fname] = 5 + i
            seccomp_fd = None
            if not spec.allow_userns:
                program = no_userns_filter()
                if program is None:
                    logger.warning(
                        "no seccomp table for this architecture: %s may create user namespaces",
                        spec.name,
                        extra={"action": "seccomp_unavailable", "agent": spec.name},
                    )
                else:
                    seccomp_fd = 5 + len(data)
                    fds[seccomp_fd] = _memfd("seccomp", program)
            fds[3] = os.open(
                spec.log_dir / STATUS_NAME,
                os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC,
                0o640,
            )
            read_end, write_end = os.pipe()
            fds[4] = write_end
            argv = self.sandbox_argv(spec, data_fds, seccomp_fd)
            if spec.network == "egress":
                net = EgressNet(spec.name, spec.log_dir, self.scope)
                await net.create()
                self._nets[spec.name] = net
                self._guard.start()
                record.update(net.record())
                argv = [which("nsenter"), f"--net={net.path}", "--", *argv]
        except BaseException:
            for fd in fds.values():
                os.close(fd)
            if net is not None:
                await net.teardown()
                self._nets.pop(spec.name, None)
            raise
        return Launch(
            argv=launcher_argv(cgroup, argv),
            env={"PATH": "/usr/bin:/bin"},
            fds=fds,
            info_fd=read_end,
            record=record,
        )

    async def _after_spawn(self, box: Sandbox) -> None:
        """bwrap's reported child is the sandbox's pid 1 (which ignores SIGTERM); the agent is
        its first child. Waiting for it also turns a failed sandbox set-up into an error."""
        init = box.child_pid
        deadline = time.monotonic() + START_TIMEOUT
        while init is not None and pid_alive(init, box.child_ticks):
            kids = _children(init)
            if kids:
                st = proc_stat(kids[0])
                box.main_pid, box.main_ticks = kids[0], (st[1] if st else None)
                return
            if time.monotonic() > deadline:
                await self._fail_start(box)
            await asyncio.sleep(0.002)  # bwrap forks the agent right after mounting: ms
        # pid 1 is gone: either set-up failed, or the agent already ran and exited (then bwrap
        # writes its exit code to status.json before it exits itself)
        assert box.pidfd is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wait_readable(box.pidfd), START_TIMEOUT)
        if self._exit_from_files(box.spec) is None:
            await self._fail_start(box)

    def _watch(self, box: Sandbox) -> None:
        super()._watch(box)
        net = self._nets.get(box.spec.name)
        if net is not None:

            def rerecord() -> None:
                box.extra = net.record()
                write_json(box.spec.log_dir / "runtime.json", self._record(box))

            net.on_restart = rerecord
            net.supervise()

    async def _abort(self, spec: LaunchSpec) -> None:
        net = self._nets.pop(spec.name, None)
        if net is not None:
            await net.teardown()

    async def _after_exit(self, box: Sandbox) -> None:
        net = self._nets.pop(box.spec.name, None)
        if net is not None:
            await net.teardown()

    async def _after_adopt(self, box: Sandbox, record: dict[str, Any]) -> None:
        if record.get("netns"):
            net = EgressNet(box.spec.name, box.spec.log_dir, self.scope)
            net.adopt(record.get("slirp_pid"), record.get("slirp_ticks"))
            await net.ensure()
            self._nets[box.spec.name] = net
            self._guard.start()
            box.extra = net.record()
            record.update(box.extra)
            write_json(box.spec.log_dir / "runtime.json", self._record(box))

    async def _cleanup_stale(self, spec: LaunchSpec, record: dict[str, Any]) -> None:
        if record.get("netns"):
            net = EgressNet(spec.name, spec.log_dir, self.scope)
            net.adopt(record.get("slirp_pid"), record.get("slirp_ticks"))
            await net.teardown()

    async def _close_side_tasks(self) -> None:
        await self._guard.aclose()
        for net in self._nets.values():
            await net.detach()

    # -- shell
    async def exec_argv(self, spec: LaunchSpec, argv: list[str]) -> list[str]:
        """`nsenter` into the running sandbox's namespaces, then (root) `setpriv` to the agent's
        uid, then the sandbox's seccomp filter, with cwd /state and the agent's environment;
        the command joins the cgroup too."""
        box = self._sandboxes.get(spec.name)
        if box is not None and box.running:
            child, cgroup = box.child_pid, box.cgroup
        else:
            record = read_json(spec.log_dir / "runtime.json") or {}
            if not self._record_alive(record):
                raise NotFound(f"agent {spec.name!r} is not running")
            child, cgroup = record.get("child_pid"), self._cgroup(spec.name)
            cgroup.adopt()
        if not isinstance(child, int):
            raise NotFound(f"agent {spec.name!r} has no sandboxed process")
        env = self.env(spec)
        if term := os.environ.get("TERM"):
            env.setdefault("TERM", term)
        cmd = [which("nsenter"), f"--target={child}", "--mount", "--uts", "--ipc", "--net"]
        cmd += ["--pid", "--cgroup"]
        if os.geteuid() != 0:
            cmd += ["--user", "--preserve-credentials"]
        cmd += ["--root", "--"]
        if os.geteuid() == 0:
            cmd += ["/usr/bin/setpriv", *setpriv_args(self._uid(spec)), "--"]
        program = None if spec.allow_userns else no_userns_filter()
        if program is not None:  # the same filter bwrap gives the agent
            cmd += [sys.executable, "-I", "-S", "-c", LOADER, program.hex()]
        cmd += ["/usr/bin/env", "-i", "-C", str(STATE)]
        cmd += [*(f"{k}={v}" for k, v in env.items()), *argv]
        return launcher_argv(cgroup, cmd)
