"""Warm `claude` processes in real sandboxes: a crash mid-turn or between turns is recorded,
the next turn starts a fresh process, and no message is lost."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from hyperhive.bench.spawn import sandbox_pids
from hyperhive.core.hive import Hive
from tests.e2e.conftest import MakeHive, event_rows, turns
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow

FROM_OP = "from operator"


def warm_claude(hive: Hive, name: str) -> int | None:
    """The host pid of the agent's warm `claude` process, if one runs."""
    for pid in sandbox_pids(hive.paths.logs_dir(name)):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"--permission-prompt-tool" in cmdline:
            return pid
    return None


def operator_rows(hive: Hive) -> list[dict[str, object]]:
    return [r for r in turns(hive, "alice") if r["wake_from"] == "operator"]


async def test_crash_mid_turn_is_retried_on_a_fresh_process(make_hive: MakeHive) -> None:
    scenario = {
        "rules": [
            {
                "id": "slow",
                "agent": "alice",
                "when_user_contains": FROM_OP,
                "times": 1,
                "chunk_delay_ms": 300,
                "text": " ".join(f"word{i}" for i in range(200)),
            },
            {"id": "fine", "agent": "alice", "when_user_contains": "attempt 2", "text": "done"},
            # killed before the CLI wrote the prompt to its session (a loaded machine): the
            # harness sends the wake prompt itself again, not the "attempt 2" note
            {"id": "again", "agent": "alice", "when_user_contains": FROM_OP, "text": "done"},
        ]
    }
    hive, sim = await make_hive(scenario, endpoint={"retry_wait_seconds": 0.1})
    await hive.spawn("alice")
    [msg] = await hive.broker.send("operator", "alice", "write a long essay")
    await eventually(lambda: sim.fired("slow"), 90, "the slow turn to start")
    pid = await eventually(lambda: warm_claude(hive, "alice"), 30, "alice's claude")
    assert isinstance(pid, int)
    os.kill(pid, signal.SIGKILL)
    await eventually(lambda: len(operator_rows(hive)) == 2, 90, "the retried turn")
    first, second = operator_rows(hive)
    assert first["result_kind"] == "failed" and "exited mid-turn" in str(first["note"])
    assert second["result_kind"] == "ok" and sim.fired("fine") + sim.fired("again") == 1
    state = hive.paths.state_dir("alice")
    assert [e["why"] for e in event_rows(state, "claude_exit")] == ["crashed"]
    assert len(event_rows(state, "claude_start")) == 2

    # handled once, then acknowledged: nothing lost, nothing reported as a failure
    async def delivered() -> bool:
        rows = await hive.broker.recent("alice", 10)
        return next(r for r in rows if r.id == msg.id).delivered_at is not None

    await eventually(delivered, 30, "the message acknowledged")
    reports = [m for m in await hive.broker.recent("operator", 20) if m.sender == "alice"]
    assert reports == []


async def test_crash_between_turns_is_recorded_and_the_next_wake_starts_cold(
    make_hive: MakeHive,
) -> None:
    scenario = {
        "rules": [
            {"id": "one", "agent": "alice", "when_user_contains": "first", "text": "1"},
            {"id": "two", "agent": "alice", "when_user_contains": "second", "text": "2"},
        ]
    }
    hive, sim = await make_hive(scenario)
    await hive.spawn("alice")
    await hive.broker.send("operator", "alice", "first")
    await eventually(lambda: len(operator_rows(hive)) == 1, 90, "the first turn")
    pid = await eventually(lambda: warm_claude(hive, "alice"), 30, "alice's warm claude")
    assert isinstance(pid, int)
    state = hive.paths.state_dir("alice")
    before = len(event_rows(state, "claude_start"))
    os.kill(pid, signal.SIGKILL)
    await eventually(lambda: event_rows(state, "claude_exit"), 30, "the crash recorded")
    [crash] = event_rows(state, "claude_exit")
    assert crash["why"] == "crashed" and crash["code"] == -signal.SIGKILL
    await hive.broker.send("operator", "alice", "second")
    await eventually(lambda: sim.fired("two"), 90, "the second turn")
    await eventually(lambda: len(operator_rows(hive)) == 2, 30, "its row")
    assert [r["result_kind"] for r in operator_rows(hive)] == ["ok", "ok"]
    assert len(event_rows(state, "claude_start")) == before + 1
    # the fresh process continued the conversation
    req = next(r for r in sim.requests if r.rule_id == "two")
    assert any("first" in str(m) for m in req.body["messages"][:-1])
