"""The one derived state of an agent: lifecycle facts plus what its harness last reported.

Pure (no I/O, imports nothing of ours): `derive(facts)` is the single place that decides what
`hive status`, `agent_status` rows, `/api/state` and the pages show.

Order of precedence (first match wins):
1. `node_lost` — the node the agent runs on stopped answering (reserved for multi-host hives;
   a single-host hive never sets it).
2. an action in flight: `starting` (spawning, starting, restarting, rebuilding) or `stopping`
   (stopping, destroying).
3. not running: `crashed` (it exited without the core asking) else `stopped`.
4. running and its turn waits for the operator's OK to use a tool: `waiting_operator`
   (the note names the tool); else reported `in_turn` / `compacting` (a paused agent still
   finishes its turn).
5. `paused`.
6. no report yet: `starting` while no harness is connected, else `unknown` (a core that just
   restarted, until the harness reports again).
7. `waiting_operator` — it has an open operator question (or reported so).
8. `failed` — its last turn failed (the note says why); stays until a turn succeeds.
9. `idle` — parked, waiting for mail.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

NOTE_MAX = 500  # characters of a reported note kept


class AgentState(StrEnum):
    STOPPED = "stopped"
    STARTING = "starting"
    STOPPING = "stopping"
    UNKNOWN = "unknown"
    IDLE = "idle"
    IN_TURN = "in_turn"
    COMPACTING = "compacting"
    WAITING_OPERATOR = "waiting_operator"
    FAILED = "failed"
    CRASHED = "crashed"
    PAUSED = "paused"
    NODE_LOST = "node_lost"


class ReportedState(StrEnum):
    """What a harness may report about itself (`report_state`)."""

    IDLE = "idle"
    IN_TURN = "in_turn"
    COMPACTING = "compacting"
    WAITING_OPERATOR = "waiting_operator"
    FAILED = "failed"


STARTING_TRANSIENTS = frozenset({"spawning", "starting", "restarting", "rebuilding"})


@dataclass(frozen=True)
class Report:
    """The harness's latest report (kept in the core's memory only)."""

    state: ReportedState
    at: str  # when the core received it
    note: str | None = None
    turn_started_at: str | None = None
    tool: str | None = None


@dataclass(frozen=True)
class Facts:
    running: bool
    connected: bool = False  # a harness holds a connection to the agent's socket
    transient: str | None = None
    crashed: bool = False
    paused: bool = False
    node_lost: bool = False
    open_question: str | None = None  # the oldest open operator question's text, if any
    report: Report | None = None
    open_permission: str | None = None  # a pending tool permission request, as a note


@dataclass(frozen=True)
class Derived:
    state: AgentState
    note: str | None = None
    since_hint: str | None = None  # when the state began, if the facts know (a turn's start)


def derive(f: Facts) -> Derived:
    if f.node_lost:
        return Derived(AgentState.NODE_LOST)
    if f.transient is not None:
        if f.transient in STARTING_TRANSIENTS:
            return Derived(AgentState.STARTING, f.transient)
        return Derived(AgentState.STOPPING, f.transient)
    if not f.running:
        if f.crashed:
            return Derived(AgentState.CRASHED, "exited without being asked to")
        return Derived(AgentState.STOPPED)
    r = f.report
    if f.open_permission is not None:
        return Derived(AgentState.WAITING_OPERATOR, f.open_permission)
    if r is not None and r.state is ReportedState.IN_TURN:
        return Derived(AgentState.IN_TURN, _tool_note(r.tool), r.turn_started_at)
    if r is not None and r.state is ReportedState.COMPACTING:
        return Derived(AgentState.COMPACTING)
    if f.paused:
        return Derived(AgentState.PAUSED)
    if r is None:
        return Derived(AgentState.UNKNOWN if f.connected else AgentState.STARTING)
    if f.open_question is not None:
        return Derived(AgentState.WAITING_OPERATOR, f.open_question)
    if r.state is ReportedState.WAITING_OPERATOR:
        return Derived(AgentState.WAITING_OPERATOR, r.note)
    if r.state is ReportedState.FAILED:
        return Derived(AgentState.FAILED, r.note)
    return Derived(AgentState.IDLE)


def _tool_note(tool: str | None) -> str | None:
    return f"running {tool}" if tool else None


def clip(text: str | None, limit: int = NOTE_MAX) -> str | None:
    """A note on one line, at most `limit` characters (None stays None)."""
    if text is None:
        return None
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
