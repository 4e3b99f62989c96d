"""ProcessRuntime (no isolation): logs, exit status that survives the daemon, adoption, stop,
and the shared helpers (log rotation, JSON status parsing)."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import replace
from pathlib import Path

import pytest

from hyperhive.errors import Conflict, NotFound
from hyperhive.runtime.hostproc import iter_json, pid_alive, rotate_log
from hyperhive.runtime.process import ProcessRuntime
from tests.runtime.conftest import PY, Agents, start_in_daemon
from tests.support.waiting import eventually


async def test_runs_with_host_paths_and_records_exit(
    process_rt: ProcessRuntime, agents: Agents, caplog: pytest.LogCaptureFixture
) -> None:
    spec = agents.spec(
        [
            PY,
            "-c",
            "import os; print('CWD', os.getcwd(), os.environ['HIVE_STATE_DIR']); raise SystemExit(3)",
        ]
    )
    with caplog.at_level(logging.WARNING):
        st = await process_rt.start(spec)
    assert st.running and st.pid
    assert any(getattr(r, "action", "") == "unsandboxed" for r in caplog.records)
    assert await asyncio.wait_for(process_rt.wait(spec.name), 30) == 3
    assert f"CWD {spec.state_dir} {spec.state_dir}" in agents.log(spec)
    assert json.loads((spec.log_dir / "exit.json").read_text()) == {"exit_code": 3}
    st = await process_rt.status(spec.name)
    assert not st.running and st.exit_code == 3


async def test_adopt_after_daemon_crash(process_rt: ProcessRuntime, agents: Agents) -> None:
    go = agents.root / "go"
    spec = agents.spec(
        [PY, "-c", f"print('UP', flush=True); open({str(go)!r}).read(); raise SystemExit(9)"]
    )
    import os

    os.mkfifo(go, 0o666)
    daemon, pid = await start_in_daemon("process", spec)
    await eventually(lambda: "UP" in agents.log(spec), 20, what="agent up")
    daemon.kill()
    await daemon.wait()
    async with ProcessRuntime() as fresh:
        st = await fresh.adopt(spec)
        assert st.running and st.pid == pid
        with pytest.raises(Conflict):
            await fresh.start(spec)
        await asyncio.to_thread(lambda: os.close(os.open(go, os.O_WRONLY)))
        assert await asyncio.wait_for(fresh.wait(spec.name), 30) == 9
    assert json.loads((spec.log_dir / "exit.json").read_text()) == {"exit_code": 9}


async def test_adopt_reports_the_revision_it_was_started_with(
    process_rt: ProcessRuntime, agents: Agents
) -> None:
    spec = agents.spec(
        [PY, "-c", "import time; print('UP', flush=True); time.sleep(300)"], config_rev="old-rev"
    )
    await process_rt.start(spec)
    await eventually(lambda: "UP" in agents.log(spec), 20, what="agent up")
    async with ProcessRuntime() as fresh:  # a restarted daemon, after a config change
        st = await fresh.adopt(replace(spec, config_rev="new-rev", network="host"))
        assert st.running and st.config_rev == "old-rev"
    record = json.loads((spec.log_dir / "runtime.json").read_text())
    assert (record["config_rev"], record["network"]) == ("old-rev", "none")


async def test_graceful_stop(process_rt: ProcessRuntime, agents: Agents) -> None:
    spec = agents.spec(
        [
            PY,
            "-c",
            "import signal\n"
            "signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])\n"
            "print('READY', flush=True)\n"
            "signal.sigwait([signal.SIGTERM])\n"
            "print('CLEAN EXIT', flush=True)\n",
        ]
    )
    await process_rt.start(spec)
    await eventually(lambda: "READY" in agents.log(spec), 20, what="READY")
    st = await process_rt.stop(spec.name, timeout=30)
    assert st.exit_code == 0 and "CLEAN EXIT" in agents.log(spec)


async def test_kill_ends_the_whole_tree(process_rt: ProcessRuntime, agents: Agents) -> None:
    spec = agents.spec(["/bin/sh", "-c", "sleep 300 & echo CHILD $!; echo READY; wait"])
    await process_rt.start(spec)
    await eventually(lambda: "READY" in agents.log(spec), 20, what="READY")
    child = int(agents.log(spec).split("CHILD ")[1].split()[0])
    st = await process_rt.kill(spec.name)
    assert st.exit_code == 137
    await eventually(lambda: not pid_alive(child), 20, what="grandchild gone")


async def test_wait_unknown_agent(process_rt: ProcessRuntime) -> None:
    with pytest.raises(NotFound):
        await process_rt.wait("nobody")


def test_rotate_log_keeps_two(tmp_path: Path) -> None:
    log = tmp_path / "harness.log"
    for gen in range(4):
        log.write_text(f"gen{gen}" * 10)
        rotate_log(log, max_bytes=5, keep=2)
    assert not log.exists()
    assert (tmp_path / "harness.log.1").read_text().startswith("gen3")
    assert (tmp_path / "harness.log.2").read_text().startswith("gen2")
    assert not (tmp_path / "harness.log.3").exists()
    small = tmp_path / "small.log"
    small.write_text("x")
    rotate_log(small, max_bytes=5)
    assert small.read_text() == "x"


def test_iter_json_reads_bwrap_status_stream() -> None:
    raw = b'{ "child-pid": 12 }\n{ "exit-code": 137 }\n{ "partial'
    assert iter_json(raw) == [{"child-pid": 12}, {"exit-code": 137}]
