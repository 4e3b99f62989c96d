"""BwrapRuntime against real bubblewrap: isolation, identity, network modes, limits, lifecycle
(adoption after a daemon crash, graceful stop, hard kill) and the tools the harness needs."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import struct
from dataclasses import replace
from pathlib import Path

import pytest

from hyperhive.errors import Conflict
from hyperhive.runtime.base import Limits
from hyperhive.runtime.bwrap import BwrapRuntime, claude_binary
from hyperhive.runtime.cgroups import AgentCgroup
from hyperhive.runtime.hostproc import pid_alive
from hyperhive.runtime.netns import NETNS_DIR, netns_name, slirps_for
from tests.runtime.conftest import (
    PY,
    Agents,
    require_cgroups,
    require_egress,
    require_sandbox,
    start_in_daemon,
)
from tests.support.fifo import fifo, release
from tests.support.waiting import eventually

pytestmark = pytest.mark.sandbox


def py(code: str) -> list[str]:
    return [PY, "-c", code]


async def run(rt: BwrapRuntime, agents: Agents, argv: list[str], **kw: object) -> tuple[int, str]:
    spec = agents.spec(argv, **kw)  # type: ignore[arg-type]
    await rt.start(spec)
    code = await asyncio.wait_for(rt.wait(spec.name), 60)
    return code, agents.log(spec)


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


async def test_filesystem_is_read_only_except_state(bwrap_rt: BwrapRuntime, agents: Agents) -> None:
    code, log = await run(
        bwrap_rt,
        agents,
        py(
            "import os\n"
            "for p in ('/usr/hh-probe', '/etc/hh-probe', '/hh-probe', '/work/hh-probe'):\n"
            "    try:\n"
            "        open(p, 'w'); print('WROTE', p)\n"
            "    except OSError as e:\n"
            "        print('DENIED', p, e.errno)\n"
            "print('SHADOW', os.path.exists('/etc/shadow'))\n"
            "open('/state/ok', 'w').write('x'); open('/tmp/ok', 'w').write('x')\n"
            "print('CWD', os.getcwd(), os.environ['HOME'], os.getuid())\n"
            "print('CAPS', [l.split()[1] for l in open('/proc/self/status') if l.startswith('CapEff')])\n"
            "print('NNP', [l.split()[1] for l in open('/proc/self/status') if l.startswith('NoNewPrivs')])\n"
        ),
    )
    spec = agents.specs[-1]
    assert code == 0, log
    assert "WROTE" not in log
    assert log.count("DENIED") == 4
    assert "SHADOW False" in log
    assert (spec.state_dir / "ok").exists()
    assert f"CWD /state /state {spec.uid if spec.uid is not None else os.getuid()}" in log
    assert "CAPS ['0000000000000000']" in log
    assert "NNP ['1']" in log
    if spec.uid is not None:
        assert (spec.state_dir / "ok").stat().st_uid == spec.uid


async def test_other_agents_state_is_invisible(bwrap_rt: BwrapRuntime, agents: Agents) -> None:
    a = agents.spec(py("pass"), short="a")
    (a.state_dir / "secret").write_text("mine")
    code, log = await run(
        bwrap_rt,
        agents,
        py(
            "import os\n"
            f"print('HOSTPATH', os.path.exists({str(a.state_dir)!r}))\n"
            f"print('ROOT', os.path.exists({str(agents.root)!r}))\n"
            "print('STATE', sorted(os.listdir('/state')))\n"
        ),
        short="b",
    )
    assert code == 0, log
    assert "HOSTPATH False" in log and "ROOT False" in log
    assert "STATE []" in log


async def test_host_processes_are_invisible(bwrap_rt: BwrapRuntime, agents: Agents) -> None:
    code, log = await run(
        bwrap_rt,
        agents,
        py(
            "import os, socket\n"
            "print('PIDS', sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))\n"
            "print('HOST', socket.gethostname())\n"
        ),
    )
    assert code == 0, log
    pids = json.loads(log.split("PIDS ", 1)[1].splitlines()[0])
    assert pids == [1, 2], pids  # bwrap's pid 1 and the agent itself
    assert f"HOST agent-{agents.specs[-1].name}" in log


async def test_socket_in_sock_dir_with_peer_uid(bwrap_rt: BwrapRuntime, agents: Agents) -> None:
    spec = agents.spec(
        py(
            "import socket\n"
            "s = socket.socket(socket.AF_UNIX)\n"
            "s.connect('/run/hive/hive.sock')\n"
            "s.sendall(b'hello\\n')\n"
            "print('REPLY', s.recv(100))\n"
        )
    )
    peers: list[tuple[int, int, int]] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        peers.append(struct.unpack("3i", creds))
        await reader.readline()
        writer.write(b"welcome")
        await writer.drain()
        writer.close()

    path = spec.sock_dir / "hive.sock"
    server = await asyncio.start_unix_server(handle, path=str(path))
    os.chmod(path, 0o666)
    async with server:
        await bwrap_rt.start(spec)
        code = await asyncio.wait_for(bwrap_rt.wait(spec.name), 60)
    log = agents.log(spec)
    assert code == 0, log
    assert "REPLY b'welcome'" in log
    expected = spec.uid if spec.uid is not None else os.getuid()
    assert [p[1] for p in peers] == [expected]
    assert peers[0][1] != 0 or os.geteuid() != 0


CONNECT = (
    "import socket, sys\n"
    "port = int(sys.argv[1])\n"
    "for host in ('127.0.0.1', '10.0.2.2'):\n"
    "    try:\n"
    "        socket.create_connection((host, port), timeout=3).close(); print('REACHED', host)\n"
    "    except OSError as e:\n"
    "        print('BLOCKED', host, type(e).__name__)\n"
    "print('IFACES', [l.split(':')[0].strip() for l in open('/proc/net/dev').readlines()[2:]])\n"
)


async def _loopback_server() -> tuple[asyncio.Server, int, list[int]]:
    hits: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hits.append(1)
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], hits


async def test_egress_cannot_reach_host_loopback(bwrap_rt: BwrapRuntime, agents: Agents) -> None:
    require_egress()
    server, port, hits = await _loopback_server()
    async with server:
        spec = agents.spec([PY, "-c", CONNECT, str(port)], network="egress")
        await bwrap_rt.start(spec)
        assert (NETNS_DIR / netns_name(spec.name)).exists()
        code = await asyncio.wait_for(bwrap_rt.wait(spec.name), 60)
    log = agents.log(spec)
    assert code == 0, log
    assert "BLOCKED 127.0.0.1" in log and "BLOCKED 10.0.2.2" in log
    assert "'tap0'" in log  # slirp4netns gave it a (NATed) interface
    assert hits == []
    assert not (NETNS_DIR / netns_name(spec.name)).exists()  # torn down on exit


async def test_host_network_reaches_host_loopback(bwrap_rt: BwrapRuntime, agents: Agents) -> None:
    server, port, hits = await _loopback_server()
    async with server:
        code, log = await run(bwrap_rt, agents, [PY, "-c", CONNECT, str(port)], network="host")
    assert code == 0, log
    assert "REACHED 127.0.0.1" in log
    assert hits


async def test_none_network_has_only_loopback(bwrap_rt: BwrapRuntime, agents: Agents) -> None:
    code, log = await run(bwrap_rt, agents, [PY, "-c", CONNECT, "9"], network="none")
    assert code == 0, log
    assert "IFACES ['lo']" in log
    assert "REACHED" not in log


async def test_memory_limit_kills_with_137(bwrap_rt: BwrapRuntime, agents: Agents) -> None:
    require_cgroups()
    spec = agents.spec(
        py(
            "chunks = []\n"
            "for i in range(256):\n"
            "    chunks.append(bytearray(8 * 1024 * 1024))\n"
            "    print('MB', (i + 1) * 8, flush=True)\n"
            "print('SURVIVED')\n"
        ),
        limits=Limits(memory_mb=64),
    )
    await bwrap_rt.start(spec)
    code = await asyncio.wait_for(bwrap_rt.wait(spec.name), 60)
    log = agents.log(spec)
    assert code == 137, log
    assert "SURVIVED" not in log and "MB 8" in log
    st = await bwrap_rt.status(spec.name)
    assert not st.running and st.exit_code == 137
    assert json.loads((spec.log_dir / "exit.json").read_text()) == {"exit_code": 137}


async def test_pids_limit_refuses_forks(bwrap_rt: BwrapRuntime, agents: Agents) -> None:
    require_cgroups()
    code, log = await run(
        bwrap_rt,
        agents,
        py(
            "import os, time\n"
            "kids, refused = [], 0\n"
            "for _ in range(30):\n"
            "    try:\n"
            "        pid = os.fork()\n"
            "    except BlockingIOError:\n"
            "        refused += 1\n"
            "        continue\n"
            "    if pid == 0:\n"
            "        time.sleep(30); os._exit(0)\n"
            "    kids.append(pid)\n"
            "print('FORKED', len(kids), 'REFUSED', refused, flush=True)\n"
            "for k in kids: os.kill(k, 9); os.waitpid(k, 0)\n"
        ),
        limits=Limits(pids=10),
    )
    assert code == 0, log
    forked = int(log.split("FORKED ")[1].split()[0])
    refused = int(log.split("REFUSED ")[1].split()[0])
    assert refused > 0 and forked < 10, log


async def test_adopt_after_daemon_crash(bwrap_rt: BwrapRuntime, agents: Agents) -> None:
    spec = agents.spec(py("print('UP', flush=True); open('/state/go').read(); raise SystemExit(7)"))
    go = fifo(spec.state_dir / "go", spec.uid)
    daemon, pid = await start_in_daemon("bwrap", spec)
    await eventually(lambda: "UP" in agents.log(spec), 20, what="sandbox up")
    daemon.kill()  # kill -9 of the daemon: the sandbox must live on
    await daemon.wait()

    fresh = BwrapRuntime()  # the restarted daemon
    try:
        st = await fresh.adopt(spec)
        assert st.running and st.pid == pid
        with pytest.raises(Conflict):
            await fresh.start(spec)  # no duplicate
        with pytest.raises(Conflict):
            await bwrap_rt.start(spec)  # not even from another runtime instance
        cg = AgentCgroup(spec.name)
        if cg.adopt():
            agent_procs = [p for p in cg.procs() if _cmdline(p).startswith(PY.encode() + b"\0")]
            assert agent_procs == [pid]
        await release(go)
        assert await asyncio.wait_for(fresh.wait(spec.name), 30) == 7
        st = await fresh.status(spec.name)
        assert not st.running and st.exit_code == 7
        assert json.loads((spec.log_dir / "exit.json").read_text()) == {"exit_code": 7}
    finally:
        await fresh.aclose()


async def test_adopt_reads_exit_code_of_sandbox_that_ended_meanwhile(agents: Agents) -> None:
    require_sandbox()
    spec = agents.spec(py("open('/state/go').read(); raise SystemExit(5)"))
    go = fifo(spec.state_dir / "go", spec.uid)
    daemon, _ = await start_in_daemon("bwrap", spec)
    daemon.kill()
    await daemon.wait()
    await release(go)
    record = json.loads((spec.log_dir / "runtime.json").read_text())
    await eventually(
        lambda: not pid_alive(record["pid"], record["start_ticks"]), 20, what="sandbox exit"
    )
    async with BwrapRuntime() as fresh:
        st = await fresh.adopt(spec)
        assert not st.running and st.exit_code == 5
        assert (await fresh.status(spec.name)).exit_code == 5
        assert await fresh.wait(spec.name) == 5
    assert json.loads((spec.log_dir / "exit.json").read_text()) == {"exit_code": 5}


async def test_graceful_stop_lets_work_finish(bwrap_rt: BwrapRuntime, agents: Agents) -> None:
    spec = agents.spec(
        py(
            "import signal, time\n"
            "signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])\n"
            "print('READY', flush=True)\n"
            "signal.sigwait([signal.SIGTERM])\n"
            "for i in range(3): open('/state/work', 'a').write(f'step{i}\\n'); time.sleep(0.05)\n"
            "print('FINISHED', flush=True)\n"
        )
    )
    await bwrap_rt.start(spec)
    await eventually(lambda: "READY" in agents.log(spec), 20, what="READY")
    st = await bwrap_rt.stop(spec.name, timeout=30)
    assert not st.running and st.exit_code == 0, agents.log(spec)
    assert "FINISHED" in agents.log(spec)
    assert (spec.state_dir / "work").read_text().count("step") == 3


async def test_stop_escalates_to_kill(bwrap_rt: BwrapRuntime, agents: Agents) -> None:
    spec = agents.spec(
        py(
            "import signal, subprocess\n"
            "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "subprocess.Popen(['sleep', '300'])\n"
            "print('READY', flush=True)\n"
            "signal.pause()\n"
        )
    )
    await bwrap_rt.start(spec)
    await eventually(lambda: "READY" in agents.log(spec), 20, what="READY")
    st = await bwrap_rt.stop(spec.name, timeout=0.5)
    assert not st.running and st.exit_code == 137
    assert not AgentCgroup(spec.name).exists()


async def test_kill_is_immediate(bwrap_rt: BwrapRuntime, agents: Agents) -> None:
    spec = agents.spec(py("import time; print('READY', flush=True); time.sleep(300)"))
    await bwrap_rt.start(spec)
    await eventually(lambda: "READY" in agents.log(spec), 20, what="READY")
    st = await bwrap_rt.kill(spec.name)
    assert not st.running and st.exit_code == 137
    assert (await bwrap_rt.wait(spec.name)) == 137


async def test_double_start_is_a_conflict(bwrap_rt: BwrapRuntime, agents: Agents) -> None:
    spec = agents.spec(py("open('/state/go').read()"))
    go = fifo(spec.state_dir / "go", spec.uid)
    await bwrap_rt.start(spec)
    with pytest.raises(Conflict):
        await bwrap_rt.start(spec)
    await release(go)
    assert await asyncio.wait_for(bwrap_rt.wait(spec.name), 30) == 0
    await bwrap_rt.start(spec)  # a finished agent starts again
    await release(go)
    assert await asyncio.wait_for(bwrap_rt.wait(spec.name), 30) == 0


async def test_hyperhive_and_claude_run_inside(bwrap_rt: BwrapRuntime, agents: Agents) -> None:
    claude = claude_binary()
    assert claude is not None
    code, log = await run(
        bwrap_rt,
        agents,
        [
            "/bin/sh",
            "-c",
            f"{PY} -c 'import hyperhive; print(\"IMPORTED\", hyperhive.__name__)' && {claude} --version",
        ],
    )
    assert code == 0, log
    assert "IMPORTED hyperhive" in log
    assert "Claude Code" in log or any(ch.isdigit() for ch in log.splitlines()[-1]), log


async def test_git_commit_carries_agent_identity(bwrap_rt: BwrapRuntime, agents: Agents) -> None:
    code, log = await run(
        bwrap_rt,
        agents,
        [
            "/bin/sh",
            "-c",
            "set -e; git init -q /state/repo; cd /state/repo; git commit -q --allow-empty -m hi; "
            "git log -1 --format='IDENT %an <%ae> | %cn <%ce>'",
        ],
    )
    name = agents.specs[-1].name
    assert code == 0, log
    assert f"IDENT {name} <{name}@hyperhive> | {name} <{name}@hyperhive>" in log


async def test_exec_argv_enters_the_running_sandbox(bwrap_rt: BwrapRuntime, agents: Agents) -> None:
    spec = agents.spec(py("open('/state/go').read()"))
    go = fifo(spec.state_dir / "go", spec.uid)
    await bwrap_rt.start(spec)
    argv = await bwrap_rt.exec_argv(
        spec,
        [
            "/bin/sh",
            "-c",
            "echo $(id -u) $(pwd) $HOME $(hostname) $HIVE_AGENT $CLAUDE_CONFIG_DIR;"
            " ls /proc | grep -c '^[0-9]'",
        ],
    )
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE)
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0
    first, count = out.decode().split("\n")[:2]
    uid = spec.uid if spec.uid is not None else os.getuid()
    # `hive shell` / `hive login` run claude with the agent's own config dir (its login)
    assert first == f"{uid} /state /state agent-{spec.name} {spec.name} /state/.claude"
    assert int(count) <= 6  # the sandbox's pids only (bwrap, agent, shell, ls, grep...)
    await release(go)
    assert await asyncio.wait_for(bwrap_rt.wait(spec.name), 30) == 0


async def test_status_of_unknown_agent(bwrap_rt: BwrapRuntime) -> None:
    st = await bwrap_rt.status("never-started")
    assert not st.running and st.pid is None and st.exit_code is None


async def test_launch_failure_is_reported(bwrap_rt: BwrapRuntime, agents: Agents) -> None:
    from hyperhive.errors import Unavailable

    spec = agents.spec(py("pass"), ro_binds=[(Path("/nonexistent-hh"), Path("/x"))])
    with pytest.raises(Unavailable, match="failed to start"):
        await bwrap_rt.start(spec)
    assert not AgentCgroup(spec.name).exists()


async def test_adopt_keeps_the_revision_and_network_the_sandbox_was_built_from(
    bwrap_rt: BwrapRuntime, agents: Agents
) -> None:
    """A config change made while the daemon was down must not be taken for what runs: the
    adopted sandbox still has its old network and revision (so the agent shows needs_update)."""
    require_egress()
    spec = agents.spec(
        py("print('UP', flush=True); open('/state/go').read()"),
        network="egress",
        config_rev="old-rev",
    )
    go = fifo(spec.state_dir / "go", spec.uid)
    daemon, _ = await start_in_daemon("bwrap", spec)
    await eventually(lambda: "UP" in agents.log(spec), 20, what="sandbox up")
    daemon.kill()
    await daemon.wait()
    changed = replace(spec, network="host", config_rev="new-rev")  # the config applied since
    async with BwrapRuntime() as fresh:
        st = await fresh.adopt(changed)
        assert st.running and st.config_rev == "old-rev"
        assert (await fresh.status(spec.name)).config_rev == "old-rev"
        record = json.loads((spec.log_dir / "runtime.json").read_text())
        assert (record["network"], record["config_rev"]) == ("egress", "old-rev")
        assert record["netns"]
        await release(go)
        assert await asyncio.wait_for(fresh.wait(spec.name), 30) == 0


async def test_egress_survives_daemon_restart_and_slirp_crash(
    bwrap_rt: BwrapRuntime, agents: Agents
) -> None:
    require_egress()
    spec = agents.spec(
        py("print('UP', flush=True); open('/state/go').read(); raise SystemExit(4)"),
        network="egress",
    )
    go = fifo(spec.state_dir / "go", spec.uid)
    daemon, _ = await start_in_daemon("bwrap", spec)
    await eventually(lambda: "UP" in agents.log(spec), 20, what="sandbox up")
    daemon.kill()
    await daemon.wait()
    slirp = json.loads((spec.log_dir / "runtime.json").read_text())["slirp_pid"]
    async with BwrapRuntime() as fresh:
        assert (await fresh.adopt(spec)).running
        assert json.loads((spec.log_dir / "runtime.json").read_text())["slirp_pid"] == slirp
        os.kill(slirp, 9)  # the supervisor brings egress back
        await eventually(
            lambda: _slirp_restarted(fresh, spec.name, slirp), 20, what="slirp restarted"
        )
        record = json.loads((spec.log_dir / "runtime.json").read_text())
        assert record["slirp_pid"] == fresh._nets[spec.name].slirp_pid
        await release(go)
        assert await asyncio.wait_for(fresh.wait(spec.name), 30) == 4
    assert not (NETNS_DIR / netns_name(spec.name)).exists()


def _slirp_restarted(rt: BwrapRuntime, name: str, old: int) -> bool:
    net = rt._nets.get(name)
    return net is not None and net.slirp_pid not in (None, old) and pid_alive(net.slirp_pid)


async def test_kill_without_cgroups_ends_the_whole_sandbox(agents: Agents, tmp_path: Path) -> None:
    require_sandbox()
    marker = f"{300 + os.getpid() % 97}.{secrets.randbelow(10**6):06d}"  # a unique duration
    spec = agents.spec(["/bin/sh", "-c", f"sleep {marker} & sleep {marker} & echo READY; wait"])
    async with BwrapRuntime(cgroup_root=tmp_path) as rt:  # no hierarchy there: degraded
        await rt.start(spec)
        await eventually(lambda: "READY" in agents.log(spec), 20, what="READY")
        await eventually(lambda: len(_marked(marker)) == 2, 20, what="both sleepers")
        st = await rt.kill(spec.name)
        assert st.exit_code == 137
    await eventually(lambda: not _marked(marker), 20, what="sleepers gone")


def _marked(marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and _cmdline(int(entry)) == b"sleep\0" + marker.encode() + b"\0":
            found.append(int(entry))
    return found


async def test_restart_after_unwatched_exit_leaves_no_stray_slirp(agents: Agents) -> None:
    require_egress()
    spec = agents.spec(py("open('/state/go').read()"), network="egress")
    go = fifo(spec.state_dir / "go", spec.uid)
    daemon, _ = await start_in_daemon("bwrap", spec)
    daemon.kill()
    await daemon.wait()
    record = json.loads((spec.log_dir / "runtime.json").read_text())
    await release(go)  # the agent ends while no daemon watches: its slirp4netns lingers
    await eventually(lambda: not pid_alive(record["pid"], record["start_ticks"]), 20, what="exit")
    path = NETNS_DIR / netns_name(spec.name)
    assert slirps_for(path) == [record["slirp_pid"]]
    async with BwrapRuntime() as fresh:
        await fresh.start(spec)  # no adopt first: start must still clean up
        assert slirps_for(path) == [fresh._nets[spec.name].slirp_pid] != [record["slirp_pid"]]
        await release(go)
        assert await asyncio.wait_for(fresh.wait(spec.name), 30) == 0
    assert slirps_for(path) == [] and not path.exists()
