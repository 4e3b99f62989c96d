"""In-memory fakes of every store interface (`base.py`), for fast unit tests of features.

They keep the same contract as the sqlite backend, proven by the shared contract suite
(`tests/core/store/`): monotonic ids never reused, the same orderings, a resolution decided at
most once. "Durable" means "in this object": nothing survives it. Each method body runs without
an `await`, so on one event loop every call is atomic, as one sqlite write transaction is.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Collection, Sequence

from hyperhive.core.records import AgentRecord, Message, NewMessage
from hyperhive.core.store.base import (
    AgentStore,
    ApprovalStore,
    Decide,
    MessageStore,
    QuestionStore,
    ReminderStore,
)
from hyperhive.errors import Conflict, NotFound
from hyperhive.wire.approvals import ApprovalRow, ApprovalStatus
from hyperhive.wire.followups import QuestionRow, ReminderRow

# kinds of which one request per agent may be pending (sqlite: a partial unique index)
ONE_PENDING_KINDS = frozenset({"spawn", "init_config"})


class MemoryAgentStore(AgentStore):
    """Agents, and each name's generation counter (which outlives the record)."""

    def __init__(self) -> None:
        self._rows: dict[str, AgentRecord] = {}
        self._generations: dict[str, int] = {}

    async def all_agents(self) -> list[AgentRecord]:
        return [self._rows[n] for n in sorted(self._rows)]

    async def put_agent(self, rec: AgentRecord) -> None:
        self._rows[rec.name] = rec

    async def next_generation(self, name: str) -> int:
        gen = self._generations[name] = self._generations.get(name, 0) + 1
        return gen

    async def delete_agent(self, name: str) -> None:
        self._rows.pop(name, None)

    def current_generation(self, name: str) -> int:
        """The generation of `name`'s record, 0 when there is none (the operator)."""
        rec = self._rows.get(name)
        return rec.generation if rec is not None else 0


class MemoryMessageStore(MessageStore):
    """`agents`: where recipients' generations are read (shared with the agent store, as the
    sqlite stores share one database)."""

    def __init__(self, agents: MemoryAgentStore | None = None) -> None:
        self._agents = agents or MemoryAgentStore()
        self._ids = itertools.count(1)
        self._rows: dict[int, Message] = {}  # insertion order = id order

    def _current(self, m: Message) -> bool:
        return m.recipient_generation == self._agents.current_generation(m.recipient)

    async def insert_messages(
        self,
        msgs: Sequence[NewMessage],
        at: str,
        on_commit: Callable[[list[Message]], None] | None = None,
    ) -> list[Message]:
        gen = self._agents.current_generation
        out = [
            Message(
                next(self._ids),
                m.sender,
                m.recipient,
                m.body,
                m.kind,
                at,
                None,
                gen(m.recipient),
                m.trace_parent,
            )
            for m in msgs
        ]
        for m in out:
            self._rows[m.id] = m
        if on_commit is not None:
            on_commit(out)
        return out

    def _unread(self, recipient: str, exclude: Collection[int] = ()) -> list[Message]:
        skip = set(exclude)
        return [
            m
            for m in self._rows.values()
            if m.recipient == recipient
            and m.delivered_at is None
            and m.id not in skip
            and self._current(m)
        ]

    async def undelivered(
        self, recipient: str, limit: int, exclude: Collection[int] = ()
    ) -> tuple[list[Message], int]:
        rows = self._unread(recipient, exclude)
        return rows[:limit], len(rows)

    async def count_undelivered(self, recipient: str) -> int:
        return len(self._unread(recipient))

    async def adopt_undelivered(
        self, recipient: str, from_generation: int, to_generation: int
    ) -> int:
        moved = [
            m
            for m in self._rows.values()
            if m.recipient == recipient
            and m.recipient_generation == from_generation
            and m.delivered_at is None
        ]
        for m in moved:
            self._rows[m.id] = dataclasses.replace(m, recipient_generation=to_generation)
        return len(moved)

    async def mark_delivered(self, ids: Collection[int], at: str) -> None:
        for i in ids:
            m = self._rows.get(i)
            if m is not None and m.delivered_at is None:
                self._rows[i] = dataclasses.replace(m, delivered_at=at)

    async def recent(self, participant: str, limit: int) -> list[Message]:
        rows = [
            m
            for m in reversed(self._rows.values())
            if m.recipient == participant and self._current(m)
        ]
        return rows[:limit]

    async def sweep_delivered(self, before: str) -> int:
        gone = [
            m.id for m in self._rows.values() if m.delivered_at is not None and m.sent_at < before
        ]
        for i in gone:
            del self._rows[i]
        return len(gone)


class MemoryQuestionStore(QuestionStore):
    def __init__(self, agents: MemoryAgentStore | None = None) -> None:
        self._agents = agents or MemoryAgentStore()
        self._ids = itertools.count(1)
        self._rows: dict[int, QuestionRow] = {}

    async def insert(
        self,
        asker: str,
        question: str,
        options: Sequence[str],
        multi: bool,
        asked_at: str,
        deadline_at: str | None,
        target: str = "operator",
    ) -> QuestionRow:
        row = QuestionRow(
            id=next(self._ids),
            asker=asker,
            question=question,
            options=list(options),
            multi=multi,
            asked_at=asked_at,
            deadline_at=deadline_at,
            target=target,
            generation=self._agents.current_generation(asker),
        )
        self._rows[row.id] = row
        return row

    async def get(self, qid: int) -> QuestionRow | None:
        return self._rows.get(qid)

    async def pending(self, asker: str | None = None) -> list[QuestionRow]:
        if asker is None:
            return [q for q in self._rows.values() if q.open]
        gen = self._agents.current_generation(asker)
        return [
            q for q in self._rows.values() if q.open and q.asker == asker and q.generation == gen
        ]

    async def resolve(self, qid: int, at: str, decide: Decide) -> tuple[QuestionRow, bool]:
        row = self._rows.get(qid)
        if row is None:
            raise NotFound(f"no operator question #{qid}")
        if not row.open:
            return row, False
        answer = decide(row)
        now = row.model_copy(update={"answered_at": at, "answer": answer})
        self._rows[qid] = now
        return now, True

    def _open_with_deadline(self) -> list[QuestionRow]:
        return [q for q in self._rows.values() if q.open and q.deadline_at is not None]

    async def overdue(self, cutoff: str, limit: int = 100) -> list[int]:
        due = [q for q in self._open_with_deadline() if (q.deadline_at or "") <= cutoff]
        due.sort(key=lambda q: (q.deadline_at or "", q.id))
        return [q.id for q in due[:limit]]

    async def next_deadline(self) -> str | None:
        return min((q.deadline_at or "" for q in self._open_with_deadline()), default=None)


class MemoryReminderStore(ReminderStore):
    def __init__(self, agents: MemoryAgentStore | None = None) -> None:
        self._agents = agents or MemoryAgentStore()
        self._ids = itertools.count(1)
        self._rows: dict[int, ReminderRow] = {}

    async def insert(
        self, agent: str, body: str, file_path: str | None, due_at: str, created_at: str
    ) -> ReminderRow:
        row = ReminderRow(
            id=next(self._ids),
            agent=agent,
            body=body,
            file_path=file_path,
            due_at=due_at,
            created_at=created_at,
            generation=self._agents.current_generation(agent),
        )
        self._rows[row.id] = row
        return row

    async def get(self, rid: int) -> ReminderRow | None:
        return self._rows.get(rid)

    def _pending(self) -> list[ReminderRow]:
        return [r for r in self._rows.values() if r.status == "pending"]

    async def count_pending(self, agent: str) -> int:
        gen = self._agents.current_generation(agent)
        return sum(1 for r in self._pending() if r.agent == agent and r.generation == gen)

    async def due(self, cutoff: str, limit: int) -> list[ReminderRow]:
        rows = sorted(
            (r for r in self._pending() if r.due_at <= cutoff), key=lambda r: (r.due_at, r.id)
        )
        return rows[:limit]

    async def next_due(self) -> str | None:
        return min((r.due_at for r in self._pending()), default=None)

    async def mark_delivered(self, ids: Collection[int], at: str) -> None:
        for i in ids:
            r = self._rows.get(i)
            if r is not None and r.status == "pending":
                self._rows[i] = r.model_copy(
                    update={"status": "delivered", "delivered_at": at, "attempts": r.attempts + 1}
                )

    async def record_failure(self, rid: int, error: str, retry_at: str | None) -> ReminderRow:
        r = self._rows.get(rid)
        if r is None:
            raise NotFound(f"no reminder #{rid}")
        if r.status == "pending":
            update: dict[str, object] = {"attempts": r.attempts + 1, "last_error": error}
            if retry_at is None:
                update["status"] = "failed"
            else:
                update["due_at"] = retry_at
            r = self._rows[rid] = r.model_copy(update=update)
        return r


class MemoryApprovalStore(ApprovalStore):
    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._rows: dict[int, ApprovalRow] = {}

    async def insert(
        self,
        *,
        agent: str,
        kind: str,
        requested_by: str,
        requested_at: str,
        description: str = "",
        commit_ref: str = "",
        fetched_sha: str | None = None,
    ) -> ApprovalRow:
        if kind in ONE_PENDING_KINDS:
            for dup in self._rows.values():
                if dup.pending and dup.agent == agent and dup.kind == kind:
                    raise Conflict(f"a {kind} of {agent} is already waiting as approval #{dup.id}")
        row = ApprovalRow(
            id=next(self._ids),
            agent=agent,
            kind=kind,
            commit_ref=commit_ref,
            fetched_sha=fetched_sha,
            requested_by=requested_by,
            requested_at=requested_at,
            status=ApprovalStatus.PENDING.value,
            description=description,
        )
        self._rows[row.id] = row
        return row

    async def get(self, aid: int) -> ApprovalRow | None:
        return self._rows.get(aid)

    async def pending(self, *, requested_by: str | None = None) -> list[ApprovalRow]:
        return [
            a
            for a in self._rows.values()
            if a.pending and (requested_by is None or a.requested_by == requested_by)
        ]

    async def recent(self, resolved_limit: int) -> list[ApprovalRow]:
        resolved = [a for a in self._rows.values() if not a.pending]
        keep = (
            {a.id for a in resolved[len(resolved) - resolved_limit :]} if resolved_limit else set()
        )
        return [a for a in self._rows.values() if a.pending or a.id in keep]

    async def decide(
        self,
        aid: int,
        status: ApprovalStatus,
        at: str,
        note: str,
        *,
        requested_by: str | None = None,
    ) -> tuple[ApprovalRow, bool]:
        row = self._rows.get(aid)
        if row is None or (requested_by is not None and row.requested_by != requested_by):
            raise NotFound(f"no approval #{aid}")
        if not row.pending:
            return row, False
        now = row.model_copy(update={"status": status.value, "resolved_at": at, "note": note})
        self._rows[aid] = now
        return now, True

    async def finish(
        self, aid: int, status: ApprovalStatus, note: str, *, fetched_sha: str | None = None
    ) -> ApprovalRow:
        row = self._rows.get(aid)
        if row is None:
            raise NotFound(f"no approval #{aid}")
        if row.status == ApprovalStatus.APPROVED:
            update: dict[str, object] = {"status": status.value, "note": note}
            if fetched_sha is not None:
                update["fetched_sha"] = fetched_sha
            row = self._rows[aid] = row.model_copy(update=update)
        return row
