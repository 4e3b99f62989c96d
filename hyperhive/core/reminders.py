"""Reminders: a message an agent sends to its future self (`hive.reminders`).

`schedule` stores a reminder due after a delay or at a unix time; one `DeadlineScheduler`
task delivers due reminders into the agent's inbox (sender `system`, kind `reminder`), which
wakes a parked recv like any message.

Invariants:
- Exactly one of delay / at-time. A body over `REMINDER_BODY_MAX` characters is refused with a
  message telling the model to write the text under /state and pass `file_path`; with a
  `file_path` (absolute, under /state, no `..`) the stored body is a short pointer
  ("reminder: see <file_path>") plus the head of the message.
- Delivery runs in batches of `BATCH`, oldest due first. A failed delivery is retried with
  backoff (5, 10, 20, 40 s) up to `MAX_ATTEMPTS` attempts, then the reminder is `failed`.
  A delivered one is marked `delivered`; delivery is at-least-once (a crash between the send
  and the mark re-sends after restart), and a graceful stop lets a started batch finish.
- A reminder belongs to the incarnation (generation) that set it: once a new agent has that
  name, the old one's reminders fail at their due time instead of reaching it, and do not
  count among its pending reminders.
- Due times survive restarts (they are rows); overdue reminders go out when the hive starts.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from hyperhive.clock import iso, iso_seconds, parse_iso
from hyperhive.core.deadlines import DeadlineScheduler, Inflight
from hyperhive.core.feature import BaseFeature
from hyperhive.core.rpc import Caller
from hyperhive.core.store.base import ReminderStore
from hyperhive.errors import BadRequest
from hyperhive.names import SYSTEM
from hyperhive.wire.followups import (
    REMINDER_BODY_MAX,
    REMINDER_FILE_ROOT,
    REMINDER_HORIZON,
    CountPendingReminders,
    PendingReminders,
    Remind,
    ReminderRow,
    ReminderScheduled,
)

if TYPE_CHECKING:
    from hyperhive.core.hive import Hive

logger = logging.getLogger(__name__)

BATCH = 100
MAX_ATTEMPTS = 5
RETRY_BASE = 5.0  # seconds before the 2nd attempt; doubles each time
PAST_TOLERANCE = 60.0  # an at-time this far in the past is still accepted (due at once)
HEAD_CHARS = 200


class Gone(Exception):
    """The incarnation that set a reminder no longer exists (a reminder never reaches a new
    agent of the same name)."""


def check_file_path(file_path: str) -> str:
    """An absolute path under /state without `..` (as the agent sees its own files)."""
    p = PurePosixPath(file_path)
    root = PurePosixPath(REMINDER_FILE_ROOT)
    if "\x00" in file_path or not p.is_absolute() or ".." in p.parts:
        raise BadRequest(
            f"file_path {file_path!r} must be an absolute path under {REMINDER_FILE_ROOT} "
            "without '..'"
        )
    if p == root or root not in p.parents:
        raise BadRequest(
            f"file_path {file_path!r} must name a file under {REMINDER_FILE_ROOT}/ "
            f"(e.g. {REMINDER_FILE_ROOT}/reminders/next-steps.md)"
        )
    return str(p)


def reminder_body(message: str, file_path: str | None) -> str:
    """What lands in the inbox; refuses long bodies without a file with a helpful message."""
    text = message.strip()
    if not text:
        raise BadRequest("the reminder message is empty")
    if file_path is None:
        if len(text) > REMINDER_BODY_MAX:
            raise BadRequest(
                f"the reminder is {len(text)} characters; the limit is {REMINDER_BODY_MAX}. "
                f"Write the full text to a file under {REMINDER_FILE_ROOT} (for example "
                f"{REMINDER_FILE_ROOT}/reminders/<topic>.md) and call remind again with "
                "file_path set to that file and a one-line message; the reminder will point "
                "you to the file."
            )
        return text
    head = text if len(text) <= HEAD_CHARS else text[: HEAD_CHARS - 1] + "…"
    return f"reminder: see {check_file_path(file_path)}\n{head}"


def due_time(now: float, delay_seconds: float | None, at_unix_timestamp: float | None) -> float:
    if (delay_seconds is None) == (at_unix_timestamp is None):
        raise BadRequest("give exactly one of delay_seconds or at_unix_timestamp")
    if delay_seconds is not None:
        if not 0 <= delay_seconds <= REMINDER_HORIZON:
            raise BadRequest(
                f"delay_seconds must be between 0 and {REMINDER_HORIZON:.0f} (366 days)"
            )
        return now + delay_seconds
    assert at_unix_timestamp is not None
    if at_unix_timestamp > now + REMINDER_HORIZON:
        raise BadRequest(
            f"at_unix_timestamp {at_unix_timestamp:.0f} is more than 366 days ahead (now is "
            f"{now:.0f}); it is in seconds, not milliseconds"
        )
    if at_unix_timestamp < now - PAST_TOLERANCE:
        raise BadRequest(
            f"at_unix_timestamp {at_unix_timestamp:.0f} ({iso_seconds(at_unix_timestamp)}) is "
            f"in the past; now is {now:.0f} ({iso_seconds(now)})"
        )
    return max(at_unix_timestamp, now)


class RemindersFeature(BaseFeature):
    """Reminders; started as `hive.reminders`. Contributes `pending_reminders` to status."""

    name = "reminders"

    def __init__(self) -> None:
        self._inflight = Inflight()
        # per agent: reminders whose message is committed but whose row is not marked yet
        # (two writes; a reader between them must not count them pending)
        self._unmarked: Counter[str] = Counter()

    async def start(self, hive: Hive) -> None:
        await super().start(hive)
        self.store: ReminderStore = hive.storage.reminders
        self.scheduler = DeadlineScheduler(
            "reminders", hive.clock, self._next_due, self.deliver_due
        )
        _register_verbs(hive, self)
        self.scheduler.start(hive.tasks)

    async def aclose(self) -> None:
        await self._inflight.aclose()

    async def status_fields(self, agent: str) -> dict[str, Any]:
        return (await self.status_fields_many([agent]))[agent]

    async def status_fields_many(self, agents: Sequence[str]) -> dict[str, dict[str, Any]]:
        counts = await self.store.count_pending_many(agents)
        return {a: {"pending_reminders": max(counts[a] - self._unmarked[a], 0)} for a in agents}

    # -- API --------------------------------------------------------------------------------

    async def schedule(
        self,
        agent: str,
        message: str,
        *,
        delay_seconds: float | None = None,
        at_unix_timestamp: float | None = None,
        file_path: str | None = None,
    ) -> ReminderRow:
        self.hive.registry.require(agent)
        now = self.hive.clock.now()
        due = due_time(now, delay_seconds, at_unix_timestamp)
        body = reminder_body(message, file_path)
        stored_path = check_file_path(file_path) if file_path is not None else None
        r = await self.store.insert(agent, body, stored_path, iso(due), iso(now))
        self.scheduler.poke(due)
        logger.info(
            "reminder #%d for %s due %s",
            r.id,
            agent,
            r.due_at,
            extra={"action": "reminder_scheduled", "agent": agent},
        )
        self.hive.hub.publish("reminder_scheduled", id=r.id, agent=agent, due_at=r.due_at)
        return r

    async def count_pending(self, agent: str) -> int:
        return max(await self.store.count_pending(agent) - self._unmarked[agent], 0)

    async def deliver_due(self, now: float) -> None:
        """Deliver every pending reminder due at or before `now`, `BATCH` at a time."""
        cutoff = iso(now)
        while True:
            batch = await self.store.due(cutoff, BATCH)
            if batch:
                await self._inflight.run(self._deliver(batch))
            if len(batch) < BATCH:
                return

    # -- internals --------------------------------------------------------------------------

    async def _next_due(self) -> float | None:
        at = await self.store.next_due()
        return parse_iso(at) if at is not None else None

    async def _deliver(self, batch: list[ReminderRow]) -> None:
        sent: list[tuple[ReminderRow, int]] = []
        for r in batch:
            rec = self.hive.registry.get(r.agent)
            if rec is not None and rec.generation != r.generation:
                await self._failed(
                    r, Gone(f"{r.agent} was destroyed since it set this"), final=True
                )
                continue
            try:
                msgs = await self.hive.broker.send(SYSTEM, r.agent, r.body, kind="reminder")
            except Exception as exc:
                await self._failed(r, exc)
            else:
                sent.append((r, msgs[0].id if msgs else 0))
                self._unmarked[r.agent] += 1
        if not sent:
            return
        try:
            await self.store.mark_delivered([r.id for r, _ in sent], iso(self.hive.clock.now()))
        finally:
            self._unmarked.subtract(r.agent for r, _ in sent)
            self._unmarked += Counter()  # drop the zeros
        for r, message_id in sent:
            logger.info(
                "reminder #%d delivered to %s",
                r.id,
                r.agent,
                extra={"action": "reminder_delivered", "agent": r.agent},
            )
            self.hive.hub.publish(
                "reminder_delivered", id=r.id, agent=r.agent, message_id=message_id
            )

    async def _failed(self, r: ReminderRow, exc: Exception, final: bool = False) -> None:
        attempt = r.attempts + 1
        retry_at = None
        if attempt < MAX_ATTEMPTS and not final:
            retry_at = iso(self.hive.clock.now() + RETRY_BASE * 2 ** (attempt - 1))
        row = await self.store.record_failure(r.id, f"{type(exc).__name__}: {exc}", retry_at)
        logger.warning(
            "reminder #%d for %s: attempt %d failed (%s)%s",
            r.id,
            r.agent,
            attempt,
            exc,
            "; giving up" if retry_at is None else f"; retry at {retry_at}",
            extra={"action": "reminder_failed", "agent": r.agent},
        )
        if row.status == "failed":
            self.hive.hub.publish("reminder_failed", id=r.id, agent=r.agent, error=row.last_error)


def _register_verbs(hive: Hive, reminders: RemindersFeature) -> None:
    @hive.agent_rpc.handle(Remind)
    async def remind(caller: Caller, req: Remind) -> ReminderScheduled:
        r = await reminders.schedule(
            caller.name,
            req.message,
            delay_seconds=req.delay_seconds,
            at_unix_timestamp=req.at_unix_timestamp,
            file_path=req.file_path,
        )
        return ReminderScheduled(id=r.id, due_at=r.due_at)

    @hive.agent_rpc.handle(CountPendingReminders)
    async def count(caller: Caller, req: CountPendingReminders) -> PendingReminders:
        return PendingReminders(count=await reminders.count_pending(caller.name))
