"""The harness's state reports: built from its bus events, sent best-effort on their own
connection, re-sent after a core restart, never blocking the caller."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hyperhive.assembly import build_hive
from hyperhive.config import HiveConfig
from hyperhive.core.hive import Hive
from hyperhive.harness.reporter import StateReporter, StateTracker
from hyperhive.paths import HivePaths
from tests.support.waiting import eventually


class Recorder(StateReporter):
    def __init__(self) -> None:
        super().__init__("/nonexistent")
        self.reports: list[dict[str, Any]] = []

    def set(self, report: dict[str, Any]) -> None:
        self.reports.append(report)


def test_tracker_turns_bus_events_into_reports() -> None:
    rec = Recorder()
    t = StateTracker(rec)
    t.on_event("state", "t0", {"state": "waiting"})
    t.on_event("state", "t1", {"state": "thinking"})
    t.on_event("turn_start", "t1", {"from": "operator"})
    t.on_event("tool_use", "t2", {"name": "Bash"})
    t.on_event("tool_result", "t3", {"content": "ok"})
    t.on_event("text", "t3", {"text": "ignored"})
    t.on_event("turn_end", "t4", {"ok": False, "kind": "failed", "note": "API error 500"})
    t.on_event("state", "t4", {"state": "idle"})
    t.on_event("state", "t5", {"state": "waiting"})
    assert rec.reports == [
        {"state": "idle"},
        {"state": "in_turn"},
        {"state": "in_turn", "turn_started_at": "t1"},
        {"state": "in_turn", "turn_started_at": "t1", "tool": "Bash"},
        {"state": "in_turn", "turn_started_at": "t1"},
        {"state": "in_turn"},
        {"state": "failed", "note": "API error 500"},
        {"state": "failed", "note": "API error 500"},
    ]
    # failed stays until a turn succeeds; a cancel is not a success nor a failure
    t.on_event("state", "t6", {"state": "thinking"})
    t.on_event("turn_end", "t7", {"ok": False, "kind": "cancelled", "note": ""})
    t.on_event("state", "t7", {"state": "idle"})
    assert rec.reports[-1] == {"state": "failed", "note": "API error 500"}
    t.on_event("state", "t8", {"state": "thinking"})
    t.on_event("turn_end", "t9", {"ok": True, "kind": "ok", "note": ""})
    t.on_event("state", "t9", {"state": "waiting"})
    assert rec.reports[-1] == {"state": "idle"}
    t.on_event("state", "t9b", {"state": "thinking"})
    t.on_event("turn_end", "t9c", {"ok": False, "kind": "rate_limited", "note": "429"})
    t.on_event("state", "t9d", {"state": "idle"})
    assert rec.reports[-1] == {"state": "failed", "note": "rate_limited: 429"}
    t.on_event("state", "t10", {"state": "compacting"})
    assert rec.reports[-1] == {"state": "compacting"}
    n = len(rec.reports)
    t.on_event("state", "t11", {"state": "offline"})
    assert len(rec.reports) == n  # offline: nothing to say


def reported(hive: Hive, name: str) -> str | None:
    rep = hive.agent_states.reported(name)
    return rep.state.value if rep is not None else None


async def test_reports_reach_the_core_and_survive_its_restart(paths: HivePaths) -> None:
    cfg = HiveConfig.model_validate({"defaults": {"runtime": "external"}})
    sock = str(paths.agent_sock("manager"))
    async with StateReporter(sock) as reporter:
        # the core is not up yet: set() returns at once, the report waits
        reporter.set({"state": "idle"})
        assert not Path(sock).exists()
        async with build_hive(paths, cfg) as hive:
            await eventually(lambda: reported(hive, "manager") == "idle", 20, "first report")
            reporter.set({"state": "in_turn", "tool": "Bash"})
            await eventually(lambda: reported(hive, "manager") == "in_turn", 10, "in_turn")
            rep = hive.agent_states.reported("manager")
            assert rep is not None and rep.tool == "Bash"
        # a new core knows nothing until the reporter, seeing its connection close, re-sends
        async with build_hive(paths, cfg) as hive:
            await eventually(lambda: reported(hive, "manager") == "in_turn", 20, "re-sent")
