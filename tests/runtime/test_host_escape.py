"""An agent reaching the host: attacks run from inside a real bubblewrap sandbox (a `sh -c`, no
claude), then the host-side code that touches the agent's files runs, and the host must be
unharmed (issue #12)."""

from __future__ import annotations

import asyncio
import os
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
from tests.runtime.conftest import PY, Agents, require_cgroups, until
from tests.runtime.test_bwrap import fifo, release

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

    r = await asyncio.to_thread(sweep_all, agents.root, time.time(), 7, 1000, 90)

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
    await until(lambda: "hog exit" in agents.log(spec), 60, "the memory hog to end")
    st = await bwrap_rt.status(spec.name)
    assert st.running, agents.log(spec)
    assert st.oom_kills >= 1, agents.log(spec)
    assert "hog exit 137" in agents.log(spec)
    await release(gate)
    assert await asyncio.wait_for(bwrap_rt.wait(spec.name), 30) == 0
    assert (await bwrap_rt.status(spec.name)).oom_kills >= 1  # kept after the group is gone
