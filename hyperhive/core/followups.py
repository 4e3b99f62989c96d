"""Followups (what an agent opened and still waits on) and the agent's status text.

The original hyperhive calls a followup an "open thread": its MCP tools and wire verbs
(`get_open_threads`, `cancel_thread`, the `threads` field) keep that name on the wire; inside
the core we say *followup*, so it cannot be mistaken for an OS thread.

`FollowupRegistry` (`hive.followups`) knows nothing of questions or approvals: each feature adds a
*source* under an id prefix (`q` for questions, `a` for approval requests) with two async
hooks — list an agent's open items, cancel one by number. `FollowupsFeature` serves the agent
verbs `get_open_threads`, `cancel_thread` and `set_status`.

Invariants:
- A followup id is `<prefix>:<number>`; a prefix belongs to exactly one source.
- Cancelling is only ever allowed on the caller's own followups (the source checks ownership)
  and cancelling an already-resolved thread is a no-op answer (`cancelled: false`), not an
  error.
- Status text is one line of at most `STATUS_TEXT_MAX` characters with its set time (RFC 3339,
  whole seconds), stored through the registry (`agents.status_text` / `status_set_at`);
  empty text clears both. `agent_status` omits both when unset or not running.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hyperhive.clock import iso_seconds
from hyperhive.core.feature import BaseFeature
from hyperhive.core.records import AgentRecord
from hyperhive.core.rpc import Caller
from hyperhive.errors import BadRequest
from hyperhive.wire.followups import (
    STATUS_TEXT_MAX,
    CancelThread,
    FollowupCancelled,
    FollowupView,
    GetOpenThreads,
    OpenThreads,
    SetStatus,
    StatusSet,
)

if TYPE_CHECKING:
    from hyperhive.core.hive import Hive

logger = logging.getLogger(__name__)

FOLLOWUP_ID_RE = re.compile(r"^([a-z]{1,8}):([0-9]{1,18})$")


@dataclass(frozen=True)
class CancelOutcome:
    cancelled: bool  # False: it was already resolved, nothing changed
    note: str | None = None


ListOpen = Callable[[str], Awaitable[list[FollowupView]]]  # agent → its open threads
CancelOne = Callable[[str, int], Awaitable[CancelOutcome]]  # (agent, number) → outcome


@dataclass(frozen=True)
class FollowupSource:
    prefix: str
    list_open: ListOpen
    cancel: CancelOne


class FollowupRegistry:
    """The sources of open threads, by id prefix."""

    def __init__(self) -> None:
        self._sources: dict[str, FollowupSource] = {}

    def add_source(self, prefix: str, list_open: ListOpen, cancel: CancelOne) -> None:
        if not re.fullmatch(r"[a-z]{1,8}", prefix):
            raise ValueError(f"thread prefix {prefix!r} must be 1-8 lowercase letters")
        if prefix in self._sources:
            raise ValueError(f"thread prefix {prefix!r} is already taken")
        self._sources[prefix] = FollowupSource(prefix, list_open, cancel)

    def prefixes(self) -> list[str]:
        return sorted(self._sources)

    async def open_for(self, agent: str) -> list[FollowupView]:
        """Every source's open threads for `agent`, oldest first."""
        out: list[FollowupView] = []
        for source in self._sources.values():
            out.extend(await source.list_open(agent))
        return sorted(out, key=lambda t: (t.opened_at, t.id))

    async def count_for(self, agent: str) -> int:
        return len(await self.open_for(agent))

    def parse(self, thread_id: str) -> tuple[FollowupSource, int]:
        m = FOLLOWUP_ID_RE.match(thread_id.strip())
        known = ", ".join(f"{p}:N" for p in self.prefixes()) or "none"
        if m is None:
            raise BadRequest(
                f"thread id {thread_id!r} is not of the form prefix:number ({known}); "
                "get_open_threads lists yours"
            )
        source = self._sources.get(m.group(1))
        if source is None:
            raise BadRequest(
                f"unknown thread kind {m.group(1)!r} in {thread_id!r} (known: {known})"
            )
        return source, int(m.group(2))

    async def cancel(self, agent: str, thread_id: str) -> CancelOutcome:
        """Cancel one of `agent`'s threads. Raises `NotFound`/`Forbidden` from the source."""
        source, number = self.parse(thread_id)
        outcome = await source.cancel(agent, number)
        logger.info(
            "thread %s cancel by %s: %s",
            thread_id,
            agent,
            "cancelled" if outcome.cancelled else "already resolved",
            extra={"action": "followup_cancel", "agent": agent},
        )
        return outcome


def normalize_status(text: str) -> str | None:
    """One line, trimmed; None when empty. Refuses text over `STATUS_TEXT_MAX` characters."""
    line = " ".join(text.split())
    if len(line) > STATUS_TEXT_MAX:
        raise BadRequest(
            f"status text is {len(line)} characters; keep it to {STATUS_TEXT_MAX} "
            "(one short line saying what you are doing)"
        )
    return line or None


async def set_status(hive: Hive, agent: str, text: str) -> AgentRecord:
    """Set (or, with empty text, clear) an agent's status text and its set time."""
    line = normalize_status(text)
    at = iso_seconds(hive.clock.now()) if line is not None else None
    rec = await hive.registry.update(agent, status_text=line, status_set_at=at)
    logger.info(
        "status of %s: %s",
        agent,
        line or "(cleared)",
        extra={"action": "status_set", "agent": agent},
    )
    return rec


class FollowupsFeature(BaseFeature):
    """Serves `get_open_threads`, `cancel_thread` and `set_status` on agent sockets."""

    name = "followups"

    async def start(self, hive: Hive) -> None:
        await super().start(hive)
        d = hive.agent_rpc

        @d.handle(GetOpenThreads)
        async def get_open_threads(caller: Caller, req: GetOpenThreads) -> OpenThreads:
            return OpenThreads(threads=await hive.followups.open_for(caller.name))

        @d.handle(CancelThread)
        async def cancel_thread(caller: Caller, req: CancelThread) -> FollowupCancelled:
            outcome = await hive.followups.cancel(caller.name, req.id)
            return FollowupCancelled(id=req.id, cancelled=outcome.cancelled, note=outcome.note)

        @d.handle(SetStatus)
        async def set_status_verb(caller: Caller, req: SetStatus) -> StatusSet:
            rec = await set_status(hive, caller.name, req.text)
            return StatusSet(status_text=rec.status_text, status_set_at=rec.status_set_at)


__all__ = [
    "CancelOutcome",
    "FollowupRegistry",
    "FollowupSource",
    "FollowupView",
    "FollowupsFeature",
    "normalize_status",
    "set_status",
]
