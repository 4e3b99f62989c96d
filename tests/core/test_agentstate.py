"""The derived agent state (`core/agentstate.py`) over every combination of its facts."""

from __future__ import annotations

import itertools

from hyperhive.core.agentstate import (
    STARTING_TRANSIENTS,
    AgentState,
    Facts,
    Report,
    ReportedState,
    clip,
    derive,
)

AT = "2026-01-01T00:00:00.000000Z"
TURN_AT = "2026-01-01T00:00:05.000000Z"
REPORTS: list[Report | None] = [
    None,
    *(
        Report(s, AT, note=f"note {s.value}", turn_started_at=TURN_AT, tool="Bash")
        for s in ReportedState
    ),
]
TRANSIENTS = [None, "spawning", "starting", "restarting", "rebuilding", "stopping", "destroying"]

ALL = list(
    itertools.product(
        [False, True],  # running
        [False, True],  # connected
        TRANSIENTS,
        [False, True],  # crashed
        [False, True],  # paused
        [False, True],  # node_lost
        [None, "question #1: ok?"],
        REPORTS,
        [None, "waiting for the operator: may it use Bash(git push)? (#1)"],
    )
)


def expected(f: Facts) -> AgentState:
    """The precedence, spelled out one rule at a time (the module docstring's list)."""
    r = f.report.state if f.report is not None else None
    if f.node_lost:
        return AgentState.NODE_LOST
    if f.transient in STARTING_TRANSIENTS:
        return AgentState.STARTING
    if f.transient is not None:
        return AgentState.STOPPING
    if not f.running:
        return AgentState.CRASHED if f.crashed else AgentState.STOPPED
    if f.open_permission is not None:  # its turn waits for the operator's OK to use a tool
        return AgentState.WAITING_OPERATOR
    if r is ReportedState.IN_TURN:
        return AgentState.IN_TURN
    if r is ReportedState.COMPACTING:
        return AgentState.COMPACTING
    if f.paused:
        return AgentState.PAUSED
    if r is None:
        return AgentState.UNKNOWN if f.connected else AgentState.STARTING
    if f.open_question is not None or r is ReportedState.WAITING_OPERATOR:
        return AgentState.WAITING_OPERATOR
    if r is ReportedState.FAILED:
        return AgentState.FAILED
    return AgentState.IDLE


def test_every_combination() -> None:
    assert len(ALL) == 2688 * 2
    for combo in ALL:
        check(Facts(*combo))  # type: ignore[arg-type]


def check(f: Facts) -> None:
    d = derive(f)
    assert d.state is expected(f), f
    if d.state is AgentState.FAILED:
        assert f.report is not None and d.note == f.report.note  # the failure says why
    if d.state is AgentState.IN_TURN:
        assert d.note == "running Bash" and d.since_hint == TURN_AT
    if d.state is AgentState.WAITING_OPERATOR and f.open_permission is not None:
        assert d.note == f.open_permission  # which tool it waits to use
    elif d.state is AgentState.WAITING_OPERATOR and f.open_question is not None:
        assert d.note == f.open_question
    if not f.running and f.transient is None and not f.node_lost:
        assert d.since_hint is None


def test_the_enum_values_are_the_stored_strings() -> None:
    assert {s.value for s in AgentState} >= {
        "stopped",
        "starting",
        "idle",
        "in_turn",
        "waiting_operator",
        "failed",
        "crashed",
        "paused",
        "node_lost",
    }
    assert {s.value for s in ReportedState} == {
        "idle",
        "in_turn",
        "compacting",
        "waiting_operator",
        "failed",
    }


def test_clip_keeps_one_bounded_line() -> None:
    assert clip(None) is None
    assert clip("a\n  b") == "a b"
    long = clip("x" * 1000, 10)
    assert long is not None and len(long) == 10 and long.endswith("…")
