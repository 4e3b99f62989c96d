"""The core's memory of agent states: each harness's latest `report_state`, and the last
derived state per agent (`hyperhive.core.agentstate.derive` decides; this module remembers and
announces).

Invariants:
- Reports are ephemeral: kept in memory only; a restarted core knows none (the state shows
  `unknown` until the harness reports again), and a report is dropped when the agent's last
  connection closes (its harness is gone) or the agent is removed.
- `observe` is the one way a derived state is computed and remembered; when the state or its
  note changes it publishes one `agent_state` hub event (`state`, `note`, `since`) and moves
  `since` (to the turn's start for `in_turn` when known, else now).
- Facts change without anyone asking (a crash, a transient, a question, a report): the hub
  listener marks that agent dirty and the `agent-states` task re-derives it through the
  status row, so the dashboard's live feed hears about every change.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from hyperhive.clock import Clock, iso
from hyperhive.core.agentstate import AgentState, Facts, Report, ReportedState, clip, derive
from hyperhive.core.events import EventHub, HiveEvent
from hyperhive.errors import HiveError

logger = logging.getLogger(__name__)

# hub events after which an agent's derived state may differ
TRIGGERS = frozenset(
    {
        "agent_registered",
        "agent_updated",
        "agent_removed",
        "agent_connections",
        "transient_set",
        "transient_cleared",
        "agent_axes",
        "question_added",
        "question_resolved",
        "permission_added",
        "permission_resolved",
        "state_reported",
    }
)


@dataclass(frozen=True)
class Seen:
    state: AgentState
    note: str | None
    since: str


class AgentStates:
    def __init__(self, hub: EventHub, clock: Clock) -> None:
        self._hub = hub
        self._clock = clock
        self._reports: dict[str, Report] = {}
        self._seen: dict[str, Seen] = {}
        self._dirty: set[str] = set()
        self._wake = asyncio.Event()
        hub.add_listener(self._on_event)

    # -- inputs -----------------------------------------------------------------------------

    def report(
        self,
        name: str,
        state: str,
        note: str | None = None,
        turn_started_at: str | None = None,
        tool: str | None = None,
    ) -> Report:
        rep = Report(
            state=ReportedState(state),
            at=iso(self._clock.now()),
            note=clip(note),
            turn_started_at=turn_started_at,
            tool=clip(tool, 200),
        )
        self._reports[name] = rep
        self._hub.publish("state_reported", agent=name, state=rep.state.value)
        return rep

    def reported(self, name: str) -> Report | None:
        return self._reports.get(name)

    def forget(self, name: str) -> None:
        """The harness is gone: its last report no longer says anything."""
        self._reports.pop(name, None)

    def _on_event(self, ev: HiveEvent) -> None:
        if ev.kind not in TRIGGERS:
            return
        name = ev.data.get("agent")
        if not isinstance(name, str):
            return
        if ev.kind == "agent_connections" and ev.data.get("connections") == 0:
            self.forget(name)
        if ev.kind == "agent_removed":
            self.forget(name)
            self._seen.pop(name, None)
            return
        self._dirty.add(name)
        self._wake.set()

    def current(self) -> dict[str, Seen]:
        """The last derived state of every agent observed so far (a copy)."""
        return dict(self._seen)

    # -- the derived state ------------------------------------------------------------------

    def observe(self, name: str, facts: Facts) -> Seen:
        """Derive `name`'s state from `facts`; remember it and announce a change."""
        d = derive(facts)
        prev = self._seen.get(name)
        if prev is not None and prev.state == d.state and prev.note == d.note:
            return prev
        if prev is not None and prev.state == d.state:
            since = prev.since  # only the note moved (e.g. the next tool of the same turn)
        else:
            since = d.since_hint or iso(self._clock.now())
        seen = Seen(d.state, d.note, since)
        self._seen[name] = seen
        self._hub.publish(
            "agent_state", agent=name, state=seen.state.value, note=seen.note, since=seen.since
        )
        return seen

    async def run(self, refresh: Callable[[str], Awaitable[object]]) -> None:
        """Re-derive dirty agents (`refresh` builds the status row, which calls `observe`)."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            dirty, self._dirty = self._dirty, set()
            for name in sorted(dirty):
                try:
                    await refresh(name)
                except HiveError:  # removed meanwhile
                    continue
