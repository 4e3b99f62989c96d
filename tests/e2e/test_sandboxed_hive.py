"""A whole hive on real bubblewrap sandboxes: what an agent can see and do from inside, limits
that kill, a daemon killed with -9 and re-adopting its agents, graceful stops, and restarts
that keep the agent's notes and Claude session."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from hyperhive.bench.spawn import parked
from hyperhive.client.host import HostClient
from hyperhive.config import Dashboard
from hyperhive.core.hive import Hive
from hyperhive.runtime.choose import sandbox_support
from hyperhive.runtime.hostproc import pid_alive, proc_cmdline, read_json
from hyperhive.sim import Scenario, SimServer
from tests.e2e.conftest import BOTH_MODES, MakeHive, event_rows, turns, warm_param
from tests.support.daemon import DaemonProcess
from tests.support.git import commit_all
from tests.support.waiting import eventually

pytestmark = [pytest.mark.slow, pytest.mark.sandbox, pytest.mark.timeout(120)]

FROM_OP = "from operator"
QUIET = {"dashboard": Dashboard(listen="127.0.0.1:0")}  # never the shared default port 7000

# Run inside a sandbox: what this agent can see and who it is, as one JSON line. argv[1:] are
# host paths that must not exist in here.
PROBE = r"""
import json, os, socket, sys
r = {"uid": os.getuid(), "euid": os.geteuid()}
try:
    open("/usr/hh-probe", "w")
    r["usr_write"] = "wrote"
except OSError as e:
    r["usr_write"] = e.errno
r["usr_ro"] = bool(os.statvfs("/usr").f_flag & os.ST_RDONLY)
r["visible"] = [p for p in sys.argv[1:] if os.path.exists(p)]
procs = []
for pid in os.listdir("/proc"):
    if pid.isdigit():
        try:
            procs.append(open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode())
        except OSError:
            pass
r["procs"] = procs
s = socket.socket(socket.AF_UNIX)
s.connect("/run/hive/hive.sock")
s.sendall(b'{"cmd":"whoami"}\n')
r["whoami"] = json.loads(s.makefile().readline())
try:
    p = socket.socket(socket.AF_UNIX)
    p.connect("/run/hive/probe.sock")
    p.close()
except OSError as e:
    r["probe"] = str(e)
print(json.dumps(r))
"""


@pytest.fixture(autouse=True)
def _need_sandboxes() -> None:
    why = sandbox_support()
    if why is not None:
        print(f"SKIP sandboxed hive test: {why}")
        pytest.skip(f"sandboxes unavailable here: {why}")


async def inside(host_sock: Path, name: str, argv: list[str]) -> tuple[int, str, str]:
    """Run argv in `name`'s sandbox the way `hive shell` does: (exit status, stdout, stderr)."""
    answer = await HostClient(host_sock).call("shell_argv", name=name, argv=argv)
    proc = await asyncio.create_subprocess_exec(
        *answer["argv"],
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **answer.get("env", {})},
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def harness_pids(log_dir: Path) -> list[int]:
    """Host pids of harness processes in the agent's cgroup (from runtime.json)."""
    record = read_json(log_dir / "runtime.json") or {}
    procs: set[int] = set()
    for d in record.get("cgroup", {}).values():
        with contextlib.suppress(OSError):
            procs.update(int(p) for p in Path(d, "cgroup.procs").read_text().split())
    found = {p for p in procs if is_harness(" ".join(proc_cmdline(p)))}
    # a harness's own child between its fork and its exec (the claude CLI it is starting)
    # still shows the harness's command line for a moment: not a second harness
    return sorted(p for p in found if _ppid(p) not in found)


def _ppid(pid: int) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("PPid:"):
                return int(line.split()[1])
    return None


def is_harness(cmdline: str) -> bool:
    """Whether a command line is an agent's harness (through the CLI or the lean entry)."""
    words = cmdline.split()
    return words[1:5] == ["-m", "hyperhive.cli", "agent", "serve"] or words[1:3] == [
        "-m",
        "hyperhive.harness.main",
    ]


def turns_done(hive: Hive, name: str, n: int) -> Callable[[], bool]:
    return lambda: len(turns(hive, name)) >= n


def kicks(rows: list[Any]) -> int:
    return sum(1 for m in rows if m.kind == "event" and '"event":"kick"' in m.body)


async def ready(hive: Hive, name: str) -> None:
    """Until the agent's harness is connected and its spawn kick turn is recorded."""
    await eventually(lambda: hive.connections(name) > 0, 30, f"{name}'s harness to connect")
    await eventually(turns_done(hive, name, 1), 60, f"{name}'s kick turn")


# -- 1. inside the sandbox ----------------------------------------------------------------------


async def test_inside_a_sandbox(make_hive: MakeHive) -> None:
    hive, _sim = await make_hive({}, **QUIET)
    await hive.spawn("alice")
    await hive.spawn("bob")
    await eventually(lambda: hive.connections("alice") > 0, 30, "alice's harness")
    bob_state = hive.paths.state_dir("bob")
    (bob_state / "secret.md").write_text("bob's notes")
    probe_path = hive.paths.sock_dir("alice") / "probe.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(probe_path))
    os.chmod(probe_path, 0o666)
    listener.listen(1)
    listener.setblocking(False)
    hidden = [
        str(bob_state),
        str(bob_state / "secret.md"),
        str(hive.paths.home),
        str(Path.cwd() / "tests"),
    ]
    try:
        code, out, err = await inside(
            hive.paths.host_sock, "alice", [sys.executable, "-c", PROBE, *hidden]
        )
        assert code == 0, err
        r = json.loads(out)
        assert "probe" not in r, r["probe"]
        peer, _ = await asyncio.wait_for(asyncio.get_running_loop().sock_accept(listener), 5)
        cred = peer.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
        peer.close()
    finally:
        listener.close()
    uid = hive.lifecycle.sandbox_uid("alice")
    # /usr is a read-only mount and the agent cannot write it
    assert r["usr_ro"] is True and r["usr_write"] != "wrote"
    assert not Path("/usr/hh-probe").exists()
    # nothing of the host's file system beyond what is bound: bob's state, the hive home
    assert r["visible"] == []
    # only the sandbox's own processes: its harness, our probe; no pytest, no host daemons
    assert any(is_harness(p) for p in r["procs"]) and any("hh-probe" in p for p in r["procs"])
    assert not any("pytest" in p for p in r["procs"]), r["procs"]
    assert len(r["procs"]) < 12, r["procs"]
    # the agent's own socket answers from inside, as alice
    assert r["whoami"]["ok"] is True and r["whoami"]["name"] == "alice"
    # ... and the agent is its own non-root uid, which the host kernel reports to the core's
    # side of a unix socket (SO_PEERCRED: pid, uid, gid) unchanged
    if os.geteuid() == 0:
        assert uid is not None and uid != 0
        assert r["uid"] == r["euid"] == uid
        assert int.from_bytes(cred[4:8], sys.byteorder) == uid
        sock = hive.paths.agent_sock("alice").stat()
        assert sock.st_uid == uid and sock.st_mode & 0o777 == 0o600
    else:
        assert r["uid"] == os.getuid()


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    scenario = {
        "rules": [
            {"id": "hi", "agent": "alice", "when_user_contains": "are you there", "text": "here"}
        ]
    }
    async with SimServer(Scenario.model_validate(scenario)) as server:
        yield server


@pytest.fixture
async def daemon(
    short_tmp: Path, sim: SimServer, request: pytest.FixtureRequest
) -> AsyncIterator[DaemonProcess]:
    """A real `hive serve` on bwrap whose agents talk to `sim`; every sandbox it started is
    killed afterwards, even when the test left the daemon dead."""
    warm = warm_param(request)
    config = (
        '[defaults]\nruntime = "bwrap"\nnetwork = "none"\n'
        + (f"warm_seconds = {warm}\n" if warm is not None else "")
        + f'[model_endpoint]\nbase_url = "{sim.base_url}/a/{{agent}}"\n'
        "rate_limit_wait_seconds = 1\n"
        '[dashboard]\nlisten = "127.0.0.1:0"\n'
    )
    d = DaemonProcess(short_tmp / "d", config=config)
    await asyncio.to_thread(d.start)
    try:
        yield d
    finally:
        if d.proc is not None and d.proc.poll() is None:
            host = HostClient(d.paths.host_sock)
            with contextlib.suppress(Exception):
                for name in (await host.call("list"))["agents"]:
                    with contextlib.suppress(Exception):
                        await host.call("kill", name=name)
            await asyncio.to_thread(d.stop)
        for log_dir in d.paths.agents_dir.glob("*/logs"):  # whatever is still running
            record = read_json(log_dir / "runtime.json") or {}
            for d_ in record.get("cgroup", {}).values():
                with contextlib.suppress(OSError):
                    for pid in Path(d_, "cgroup.procs").read_text().split():
                        with contextlib.suppress(OSError):
                            os.kill(int(pid), signal.SIGKILL)


async def status_of(d: DaemonProcess, name: str) -> dict[str, Any]:
    rows = (await HostClient(d.paths.host_sock).call("agent_status"))["agent_statuses"]
    return next(r for r in rows if r["name"] == name)


async def test_hive_shell_passes_the_exit_status_through(daemon: DaemonProcess) -> None:
    await HostClient(daemon.paths.host_sock).call("spawn", name="alice")

    async def hive_shell(*cmd: str) -> tuple[int, bytes]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "hyperhive.cli",
            "shell",
            "alice",
            "--",
            *cmd,
            env={**os.environ, "HIVE_HOME": str(daemon.paths.home)},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode is not None
        return proc.returncode, out

    assert await hive_shell("sh", "-c", "exit 3") == (3, b"")
    code, out = await hive_shell("sh", "-c", "echo $HOME $(id -u); pwd")
    assert code == 0
    home, uid, cwd = out.decode().split()
    assert (home, cwd) == ("/state", "/state")
    assert int(uid) != 0 or os.geteuid() != 0


# -- 2. limits ------------------------------------------------------------------------------------


async def limit_memory(hive: Hive, name: str, mb: int) -> None:
    """Commit and apply `[limits] memory_mb = mb` to the agent's config (seeding it if new)."""
    if not hive.configs.has_repo(name):
        await hive.configs.seed(name)
    repo = hive.configs.repo(name).path
    toml = (repo / "agent.toml").read_text().replace("# memory_mb = 1024", f"memory_mb = {mb}")
    assert f"memory_mb = {mb}" in toml
    (repo / "agent.toml").write_text(toml)
    await hive.configs.apply(name, commit_all(repo, f"{mb} MB"))


async def assert_reported_crash(hive: Hive, name: str) -> None:
    """The sandbox ended with 137, the manager was told, and `agent_status` says failed."""

    async def ended() -> bool:
        st = await hive.lifecycle.status(name)
        return not st.running and st.exit_code is not None

    await eventually(ended, 30, "the OOM kill")
    assert (await hive.lifecycle.status(name)).exit_code == 137
    hive.crash_watch.poke()
    events: list[dict[str, Any]] = []

    async def reported() -> bool:
        rows = await hive.broker.recent("manager", 50)
        bodies = [json.loads(m.body) for m in rows if m.kind == "event"]
        events[:] = [b for b in bodies if b.get("event") == "container_crash"]
        return bool(events)

    await eventually(reported, 15, "container_crash in the manager's inbox")
    assert [(e["agent"], e["exit_code"]) for e in events] == [(name, 137)]
    rows = (await HostClient(hive.paths.host_sock).call("agent_status"))["agent_statuses"]
    row = next(r for r in rows if r["name"] == name)
    assert row["failed"] is True and row["running"] is False


# Less than the harness's python needs (it idles at ~15 MB of anonymous memory, ~30 MB RSS).
TOO_SMALL_MB = 12


async def test_memory_limit_oom_kills_at_spawn_and_is_reported(make_hive: MakeHive) -> None:
    """`TOO_SMALL_MB`: the harness is OOM-killed as it starts, usually before the crash watch
    has ever seen it running — a crash all the same."""
    hive, _sim = await make_hive({}, **QUIET)
    await limit_memory(hive, "alice", TOO_SMALL_MB)
    await hive.spawn("alice")
    await assert_reported_crash(hive, "alice")


async def test_rebuild_into_a_too_small_limit_is_reported(make_hive: MakeHive) -> None:
    hive, _sim = await make_hive({}, **QUIET)
    await hive.spawn("alice")
    await eventually(lambda: hive.connections("alice") > 0, 30, "alice's harness")
    await hive.crash_watch.tick()  # seen running
    await limit_memory(hive, "alice", TOO_SMALL_MB)
    await hive.lifecycle.rebuild("alice")
    await assert_reported_crash(hive, "alice")


# -- 3. the daemon dies, its agents do not ------------------------------------------------------


@BOTH_MODES
async def test_kill_9_daemon_then_restart_readopts_the_agent(
    daemon: DaemonProcess, sim: SimServer, warm_seconds: float
) -> None:
    host = HostClient(daemon.paths.host_sock)
    await host.call("spawn", name="alice")
    logs = daemon.paths.logs_dir("alice")
    await eventually(lambda: len(harness_pids(logs)) == 1, 30, "alice's harness")
    before = read_json(logs / "runtime.json") or {}
    [harness] = harness_pids(logs)
    assert harness == before["main_pid"]

    daemon.kill9()
    assert pid_alive(before["pid"], before["start_ticks"]) and pid_alive(harness)
    await asyncio.to_thread(daemon.start)

    after = read_json(logs / "runtime.json") or {}
    assert (after["pid"], after["main_pid"]) == (before["pid"], before["main_pid"])
    assert harness_pids(logs) == [harness]  # adopted, not started twice

    async def connected() -> bool:
        return bool((await status_of(daemon, "alice"))["running"])

    await eventually(connected, 60, "alice's harness to reconnect to the new daemon")
    await host.call("send", to="alice", body="are you there?")
    await eventually(lambda: sim.fired("hi"), 60, "alice's turn after the restart")
    assert harness_pids(logs) == [harness]
    if warm_seconds:  # the kick turn's claude outlived the daemon and took this turn too
        starts = event_rows(daemon.paths.state_dir("alice"), "claude_start")
        assert len(starts) == 1, starts

    await host.call("stop", scope={"agent_names": ["alice"]}, graceful=True)
    assert not pid_alive(harness)
    # the new daemon, which cannot reap it, read how it ended from bwrap's status file
    assert read_json(logs / "exit.json") == {"exit_code": 0}
    row = await status_of(daemon, "alice")
    assert row["running"] is False and row.get("failed") is not True


# -- 4. graceful stop ------------------------------------------------------------------------


async def test_graceful_stop_lets_the_running_turn_end(make_hive: MakeHive) -> None:
    scenario = {
        "rules": [
            {
                "id": "slow",
                "agent": "alice",
                "when_user_contains": FROM_OP,
                "chunk_delay_ms": 100,
                "text": " ".join(f"word{i}" for i in range(60)),  # 20 deltas: ~2 s
            },
        ]
    }
    hive, sim = await make_hive(scenario, **QUIET)
    await hive.spawn("alice")
    await hive.broker.send("operator", "alice", "write slowly")
    await eventually(lambda: sim.fired("slow"), 60, "the slow turn to start")
    req = next(r for r in sim.requests if r.rule_id == "slow")
    assert req.outcome == "pending"
    await hive.lifecycle.stop_agent("alice", graceful=True, timeout=60)
    req = next(r for r in sim.requests if r.rule_id == "slow")
    assert req.outcome == "complete"
    row = next(r for r in turns(hive, "alice") if r["wake_from"] == "operator")
    assert row["result_kind"] == "ok"
    st = await hive.lifecycle.status("alice")
    assert not st.running and st.exit_code == 0


# -- 5. restart and rebuild keep notes and the conversation --------------------------------------


def sessions(hive: Hive, name: str) -> set[str]:
    projects = hive.paths.state_dir(name) / ".claude" / "projects"
    return {p.stem for p in projects.glob("*/*.jsonl")}


@BOTH_MODES
async def test_restart_and_rebuild_keep_notes_and_session(
    make_hive: MakeHive, warm_seconds: float
) -> None:
    hive, sim = await make_hive({}, **QUIET)
    await hive.spawn("alice")
    await ready(hive, "alice")
    code, _, err = await inside(
        hive.paths.host_sock, "alice", ["sh", "-c", "echo remember-me > /state/notes.md"]
    )
    assert code == 0, err
    [session] = sessions(hive, "alice")
    first = [r for r in sim.requests if r.agent == "alice" and r.kind == "main"]
    assert first and {r.session_id for r in first} == {session}

    for n, action in enumerate((hive.lifecycle.restart, hive.lifecycle.rebuild), start=2):
        mark = sim.seen
        await action("alice")
        await eventually(turns_done(hive, "alice", n), 60, f"kick turn {n}")
        assert kicks(await hive.broker.recent("alice", 50)) == n
        new = [r for r in sim.requests if r.seq >= mark and r.agent == "alice" and r.kind == "main"]
        assert new and {r.session_id for r in new} == {session}, action.__name__
        assert sessions(hive, "alice") == {session}
        code, out, _ = await inside(hive.paths.host_sock, "alice", ["cat", "/state/notes.md"])
        assert (code, out) == (0, "remember-me\n")
        # a restart or rebuild (a new config) starts a new claude: one per harness run
        assert len(event_rows(hive.paths.state_dir("alice"), "claude_start")) == n


# -- the harness's lean entry point ---------------------------------------------------------------


async def test_lean_harness_entry_serves_like_hive_agent_serve(make_hive: MakeHive) -> None:
    """`python -m hyperhive.harness.main` (no `hive` CLI imports) parks in recv and stops
    cleanly on SIGTERM, like `hive agent serve`."""
    hive, _sim = await make_hive({}, runtime="external", **QUIET)
    await hive.spawn("alice")
    state = hive.paths.state_dir("alice")
    state.mkdir(parents=True, exist_ok=True)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hyperhive.harness.main",
        "--socket",
        str(hive.paths.agent_sock("alice")),
        "--state-dir",
        str(state),
        "--no-web",
        stdin=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await eventually(lambda: hive.connections("alice") > 0, 30, "the harness to connect")
        rows = await HostClient(hive.paths.host_sock).call("agent_status")
        assert next(r for r in rows["agent_statuses"] if r["name"] == "alice")["running"]
        await eventually(parked(state, after_turn=False), 30, "the harness to park in recv")
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()[-2000:]
