"""An agent reaching the host: attacks run from inside a real bubblewrap sandbox (a `sh -c`, no
claude), then the host-side code that touches the agent's files runs, and the host must be
unharmed (issue #12)."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import secrets
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from hyperhive.clock import iso
from hyperhive.core.retention import EVENTS_DB, sweep_all
from hyperhive.core.servers import AgentSocketServer
from hyperhive.paths import WEB_DIR
from hyperhive.runtime.base import Limits
from hyperhive.runtime.bwrap import BwrapRuntime
from hyperhive.runtime.netns import blocked_routes, host_addresses, netns_name
from tests.runtime.conftest import PY, Agents, require_cgroups, require_egress
from tests.support.fifo import fifo, release
from tests.support.waiting import eventually

pytestmark = pytest.mark.sandbox


async def inside(rt: BwrapRuntime, agents: Agents, script: str, **kw: object) -> tuple[int, str]:
    """Run `sh -c script` in a fresh sandbox; its exit code and output."""
    spec = agents.spec(["/bin/sh", "-c", script], **kw)  # type: ignore[arg-type]
    await rt.start(spec)
    code = await asyncio.wait_for(rt.wait(spec.name), 60)
    return code, agents.log(spec)


def _events_store(state: Path, uid: int | None, rows: int, old: int) -> None:
    conn = sqlite3.connect(state / EVENTS_DB)
    with conn:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, ts TEXT, kind TEXT)")
        for i in range(rows):
            ts = iso(time.time() - (8 * 86400 if i < old else 0))
            conn.execute("INSERT INTO events (ts, kind) VALUES (?, 'note')", (ts,))
    conn.close()
    if uid is not None:
        for f in state.iterdir():
            os.chown(f, uid, uid)


def _victim(path: Path, text: str) -> Path:
    path.write_text(text)
    os.chown(path, 0, 0)
    path.chmod(0o644)
    return path


async def test_store_side_file_links_never_reach_root_files(
    bwrap_rt: BwrapRuntime, agents: Agents
) -> None:
    """`ln -s /root/file hyperhive-events.sqlite-shm` (and -wal) inside: the host's retention
    sweep must neither chown nor write the link targets, and still sweeps a clean store."""
    if os.geteuid() != 0:
        pytest.skip("the attack needs a root daemon (a non-root one gives the agent its own uid)")
    shm = _victim(agents.root / "victim-shm", "precious shm\n")
    wal = _victim(agents.root / "victim-wal", "precious wal\n")
    script = (
        "cd /state && "
        f"ln -s {shm} t && mv -f t {EVENTS_DB}-shm && "
        f"ln -s {wal} w && mv -f w {EVENTS_DB}-wal && ls -l /state"
    )
    probe = agents.spec(["true"], short="p")  # a clean store owned by its agent
    _events_store(probe.state_dir, probe.uid, rows=5, old=2)
    os.chown(probe.state_dir, probe.uid or 0, probe.uid or 0)
    code, log = await inside(bwrap_rt, agents, script, short="x")
    attacker = agents.specs[-1]
    assert code == 0, log
    assert (attacker.state_dir / f"{EVENTS_DB}-shm").is_symlink()
    # the store itself, owned by the agent (as its harness would have made it)
    _store_beside_links(attacker.state_dir, attacker.uid)

    os.chmod(agents.root, 0o700)  # the hive home may be closed to agent uids (e.g. /root)
    try:
        r = await asyncio.to_thread(sweep_all, agents.root, time.time(), 7, 1000, 90)
    finally:
        os.chmod(agents.root, 0o755)

    for victim, text in ((shm, "precious shm\n"), (wal, "precious wal\n")):
        st = victim.lstat()
        assert (st.st_uid, st.st_gid) == (0, 0), f"{victim.name} was chowned to the agent"
        assert victim.read_text() == text, f"{victim.name} was written through the link"
    assert r.events >= 2  # the clean store was swept (as its agent's uid)
    conn = sqlite3.connect(probe.state_dir / EVENTS_DB)
    assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 3
    conn.close()
    assert (probe.state_dir / EVENTS_DB).stat().st_uid == probe.uid


def _store_beside_links(state: Path, uid: int | None) -> None:
    """An events store next to the planted side-file links (the links stay in place)."""
    scratch = state.parent / "scratch"
    scratch.mkdir()
    _events_store(scratch, None, rows=5, old=2)
    conn = sqlite3.connect(scratch / EVENTS_DB)
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.close()
    os.replace(scratch / EVENTS_DB, state / EVENTS_DB)
    scratch.rmdir()
    if uid is not None:
        os.chown(state / EVENTS_DB, uid, uid)


SQUAT = (
    "rm -f /run/hive/hive.sock; mkdir /run/hive/hive.sock; mkdir /run/hive/model.sock; "
    "ln -s /etc /run/hive/planted; echo mine > /run/hive/web/probe; ls -la /run/hive; exit 0"
)


async def _serve_agent_socket(path: Path, uid: int | None) -> None:
    """The core's agent socket server starts on `path` and answers a connection."""
    dummy: Any = None
    server = AgentSocketServer(path, dummy, dummy, dummy, owner_uid=uid)
    async with server:
        reader, writer = await asyncio.open_unix_connection(str(path))
        writer.close()
        await writer.wait_closed()
    del reader


async def test_an_agent_cannot_squat_the_core_sockets(
    bwrap_rt: BwrapRuntime, agents: Agents
) -> None:
    """`rm /run/hive/hive.sock; mkdir /run/hive/hive.sock` inside must not stop the next
    `hive serve`: /run/hive is the core's; the agent's page socket lives in its own web/."""
    code, log = await inside(bwrap_rt, agents, SQUAT, short="q")
    spec = agents.specs[-1]
    assert code == 0, log
    for name in ("hive.sock", "model.sock", "planted"):
        assert not os.path.lexists(spec.sock_dir / name), log
    probe = spec.sock_dir / WEB_DIR / "probe"
    assert probe.read_text() == "mine\n"  # web/ is the agent's (its harness binds web.sock)
    if spec.uid is not None:
        assert probe.stat().st_uid == spec.uid
        assert spec.sock_dir.stat().st_uid == 0
    await _serve_agent_socket(spec.sock_dir / "hive.sock", spec.uid)


async def test_a_squatted_socket_path_left_from_before_is_cleared(hh_dir: Path) -> None:
    """A socket dir an agent owned (the old layout) with a directory holding a link where the
    socket goes: the server removes it without following, and the dir becomes the core's."""
    sock_dir = hh_dir / "run" / "agents" / "old"
    squat = sock_dir / "hive.sock"
    squat.mkdir(parents=True)
    victim = hh_dir / "victim"
    victim.write_text("keep")
    (squat / "link").symlink_to(victim)
    uid = 231999 if os.geteuid() == 0 else None
    if uid is not None:
        for p in (sock_dir, squat):
            os.chown(p, uid, uid)
    await _serve_agent_socket(squat, uid)
    assert victim.read_text() == "keep"
    if uid is not None:
        st = sock_dir.stat()
        assert st.st_uid == 0 and not st.st_mode & 0o022


async def test_an_oom_kill_inside_a_running_sandbox_is_counted(
    bwrap_rt: BwrapRuntime, agents: Agents
) -> None:
    """A process over the memory limit is OOM-killed while the agent itself keeps running:
    the runtime's status counts it (today's crash watch turns that into `container_oom`)."""
    require_cgroups()
    spec = agents.spec(["/bin/sh", "-c", "true"], short="m", limits=Limits(memory_mb=64))
    gate = fifo(spec.state_dir / "gate", spec.uid)
    spec.argv[-1] = (
        f'"{PY}" -c "b = bytearray(400 << 20)"; echo "hog exit $?"; read x < /state/gate; exit 0'
    )
    await bwrap_rt.start(spec)
    await eventually(lambda: "hog exit" in agents.log(spec), 60, "the memory hog to end")
    st = await bwrap_rt.status(spec.name)
    assert st.running, agents.log(spec)
    assert st.oom_kills >= 1, agents.log(spec)
    assert "hog exit 137" in agents.log(spec)
    await release(gate)
    assert await asyncio.wait_for(bwrap_rt.wait(spec.name), 30) == 0
    assert (await bwrap_rt.status(spec.name)).oom_kills >= 1  # kept after the group is gone


CONNECT_ALL = (
    "import socket, sys\n"
    "for target in sys.argv[1:]:\n"
    "    host, port = target.rsplit(':', 1)\n"
    "    try:\n"
    "        socket.create_connection((host, int(port)), timeout=3).close()\n"
    "        print('REACHED', host)\n"
    "    except OSError as e:\n"
    "        print('BLOCKED', host, type(e).__name__)\n"
    "routes = open('/proc/net/route').read().splitlines()[1:]\n"
    "print('DEFAULT', any(r.split()[1] == '00000000' for r in routes))\n"
)


async def test_egress_reaches_no_address_of_this_host(
    bwrap_rt: BwrapRuntime, agents: Agents
) -> None:
    """`egress` = the internet, not this host: a server on each of the host's non-loopback
    addresses is unreachable from inside, while the sandbox keeps its default route. Nothing
    is sent off this machine (every target is one of its own addresses)."""
    require_egress()
    addrs = [a.split("/")[0] for a in await host_addresses()]
    addrs = [  # a link-local one needs a scope to bind: left out
        a
        for a in addrs
        if not ipaddress.ip_address(a).is_loopback and not ipaddress.ip_address(a).is_link_local
    ]
    if not addrs:
        pytest.skip("this host has no non-loopback address")
    hits: list[str] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hits.append("x")
        writer.close()

    servers = [await asyncio.start_server(handle, a, 0) for a in addrs]
    targets = [f"{a}:{s.sockets[0].getsockname()[1]}" for a, s in zip(addrs, servers, strict=True)]
    try:
        for t in targets:  # the servers answer from the host itself
            host, port = t.rsplit(":", 1)
            _r, w = await asyncio.open_connection(host, int(port))
            w.close()
            await w.wait_closed()
        await eventually(lambda: len(hits) == len(targets), 10, "the host-side probes")
        hits.clear()
        spec = agents.spec([PY, "-c", CONNECT_ALL, *targets], network="egress")
        await bwrap_rt.start(spec)
        code = await asyncio.wait_for(bwrap_rt.wait(spec.name), 60)
    finally:
        for s in servers:
            s.close()
    log = agents.log(spec)
    assert code == 0, log
    assert "REACHED" not in log and hits == [], log
    assert log.count("BLOCKED") == len(targets), log
    assert "DEFAULT True" in log, log


async def test_egress_host_routes_follow_new_host_addresses(
    bwrap_rt: BwrapRuntime, agents: Agents
) -> None:
    """An address the host gains while an egress agent runs is blocked in its netns too, and
    dropped when it goes (a benchmark-range /32 on the host's `lo`, removed after)."""
    require_egress()
    spec = agents.spec([PY, "-c", "open('/state/gate').read()"], network="egress")
    gate = fifo(spec.state_dir / "gate", spec.uid)
    await bwrap_rt.start(spec)
    ns = netns_name(spec.name)
    addr = f"198.18.{secrets.randbelow(250) + 1}.{secrets.randbelow(250) + 1}"
    try:
        assert await _ip("addr", "add", f"{addr}/32", "dev", "lo") == 0

        async def blocked() -> bool:
            return f"{addr}/32" in await blocked_routes(ns)

        await eventually(blocked, 20, "the new host address blocked in the agent's netns")
    finally:
        await _ip("addr", "del", f"{addr}/32", "dev", "lo")

    async def unblocked() -> bool:
        return f"{addr}/32" not in await blocked_routes(ns)

    await eventually(unblocked, 20, "the removed address unblocked")
    await release(gate)
    await asyncio.wait_for(bwrap_rt.wait(spec.name), 30)


async def _ip(*args: str) -> int:
    proc = await asyncio.create_subprocess_exec("ip", *args)
    return await proc.wait()


USERNS = (
    'unshare -Ur true; echo "unshare $?"; '
    f'"{PY}" -c "import threading; t = threading.Thread(target=print, args=(\'thread ok\',)); '
    't.start(); t.join()"; (echo "fork ok")'
)


async def test_nested_user_namespaces_are_refused_unless_asked(
    bwrap_rt: BwrapRuntime, agents: Agents
) -> None:
    """`unshare -Ur` inside fails (seccomp), while threads and forks work; an agent whose
    config asks for user namespaces gets them."""
    code, log = await inside(bwrap_rt, agents, USERNS, short="u")
    assert code == 0, log
    assert "unshare 1" in log and "Operation not permitted" in log, log
    assert "thread ok" in log and "fork ok" in log, log
    code, log = await inside(bwrap_rt, agents, USERNS, short="v", allow_userns=True)
    assert code == 0, log
    assert "unshare 0" in log and "thread ok" in log, log


async def test_hive_shell_gets_the_sandbox_seccomp_filter(
    bwrap_rt: BwrapRuntime, agents: Agents
) -> None:
    """A command the operator runs in a running sandbox (`hive shell`) cannot create a user
    namespace either: what it leaves behind runs under the same filter as the agent."""
    spec = agents.spec([PY, "-c", "open('/state/go').read()"], short="s")
    go = fifo(spec.state_dir / "go", spec.uid)
    await bwrap_rt.start(spec)
    argv = await bwrap_rt.exec_argv(spec, ["/bin/sh", "-c", USERNS])
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    text = out.decode()
    assert "unshare 1" in text and "thread ok" in text and "fork ok" in text, text
    await release(go)
    await asyncio.wait_for(bwrap_rt.wait(spec.name), 30)
