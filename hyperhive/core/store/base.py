"""The storage interfaces the core talks to, one per store: messages, agents, operator
questions, reminders, approvals. The core's features call only these; callers never see SQL.

Backends: `sqlite.py` + `*_sqlite.py` (the daemon's, schema in `sqlite_migrations.py`) and
`memory.py` (an in-memory fake for fast unit tests of features). A later PostgreSQL backend
implements the same methods and proves it with the same contract suite
(`tests/core/store/`), which runs against every backend.

Invariants (every backend): ids are monotonic and never reused; a write returns only after it
is durable; `insert_messages` runs its `on_commit` hook exactly when the rows become visible;
lists are ordered as each method says; a resolution (question, approval) is decided at most
once, by the store, never by the caller reading first; nothing here decides policy (who may
send to whom).

Generations: `insert_messages` stamps each row with its recipient's current generation (and a
question or reminder with its agent's), and `undelivered`, `count_undelivered`, `recent`,
`QuestionStore.pending(asker)` and `ReminderStore.count_pending` (and their `_many` forms) see
only rows of the current one. A backend reads the current generation from its agents' records.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Collection, Sequence
from types import TracebackType
from typing import Self

from hyperhive.core.records import AgentRecord, Message, NewMessage
from hyperhive.core.store.budgets_base import BudgetStore
from hyperhive.core.store.permissions_base import PermissionStore
from hyperhive.core.store.search import SearchStore
from hyperhive.wire.approvals import ApprovalRow, ApprovalStatus
from hyperhive.wire.followups import QuestionRow, ReminderRow

Decide = Callable[[QuestionRow], str]  # the open row → the answer (may raise to refuse)
# recipients whose mail another process committed; None: unknown, maybe anyone's (reconnect)
RemoteMessages = Callable[[Collection[str] | None], None]
# rows another process committed, as its notification carried them (no read needed)
RemoteRows = Callable[[Sequence[Message]], None]


class MessageStore(abc.ABC):
    @abc.abstractmethod
    async def insert_messages(
        self,
        msgs: Sequence[NewMessage],
        at: str,
        on_commit: Callable[[list[Message]], None] | None = None,
    ) -> list[Message]:
        """Store the rows. `on_commit(rows)` is called once they are durable and before any
        later read of this store can see them, even if the caller was cancelled meanwhile
        (the broker keeps its in-memory unread index in step with it)."""

    @abc.abstractmethod
    async def undelivered(
        self, recipient: str, limit: int, exclude: Collection[int] = ()
    ) -> tuple[list[Message], int]:
        """Oldest-first unread rows not in `exclude`, and how many unread rows there are
        in total (excluding `exclude`)."""

    @abc.abstractmethod
    async def count_undelivered(self, recipient: str) -> int: ...

    async def count_undelivered_many(self, recipients: Sequence[str]) -> dict[str, int]:
        """`count_undelivered` of each of `recipients` (one status refresh of the whole hive):
        backends answer them in one read, not one per recipient."""
        return {r: await self.count_undelivered(r) for r in recipients}

    @abc.abstractmethod
    async def adopt_undelivered(
        self, recipient: str, from_generation: int, to_generation: int
    ) -> int:
        """Re-address `recipient`'s unread rows of `from_generation` to `to_generation` (a
        revival that keeps its old mail). Returns how many."""

    @abc.abstractmethod
    async def mark_delivered(self, ids: Collection[int], at: str) -> None: ...

    @abc.abstractmethod
    async def recent(self, participant: str, limit: int) -> list[Message]:
        """Newest-first rows addressed to `participant`."""

    @abc.abstractmethod
    async def sweep_delivered(self, before: str) -> int:
        """Delete delivered rows sent before `before`; undelivered rows always stay."""


class AgentStore(abc.ABC):
    @abc.abstractmethod
    async def all_agents(self) -> list[AgentRecord]: ...

    @abc.abstractmethod
    async def put_agent(self, rec: AgentRecord) -> None:
        """Insert or replace the record."""

    @abc.abstractmethod
    async def next_generation(self, name: str) -> int:
        """Bump and return `name`'s generation; never reuses one, even after a purge."""

    @abc.abstractmethod
    async def delete_agent(self, name: str) -> None: ...


class QuestionStore(abc.ABC):
    """Operator questions. A question is resolved (answered, expired, cancelled) at most once."""

    @abc.abstractmethod
    async def insert(
        self,
        asker: str,
        question: str,
        options: Sequence[str],
        multi: bool,
        asked_at: str,
        deadline_at: str | None,
        target: str = "operator",
    ) -> QuestionRow: ...

    @abc.abstractmethod
    async def get(self, qid: int) -> QuestionRow | None: ...

    @abc.abstractmethod
    async def pending(self, asker: str | None = None) -> list[QuestionRow]:
        """Unresolved questions (of `asker`, or everyone's), oldest first."""

    @abc.abstractmethod
    async def resolve(self, qid: int, at: str, decide: Decide) -> tuple[QuestionRow, bool]:
        """Resolve `qid` with `decide(row)` if it is still open, atomically. Returns the row as
        it now is and whether this call resolved it (False: it was already resolved; `decide`
        not run). Raises `NotFound` for an unknown id, or whatever `decide` raises to refuse
        (then nothing changed)."""

    @abc.abstractmethod
    async def overdue(self, cutoff: str, limit: int = 100) -> list[int]:
        """Ids of open questions whose deadline is at or before `cutoff`, earliest first."""

    @abc.abstractmethod
    async def next_deadline(self) -> str | None:
        """The earliest deadline of an open question, if any."""


class ReminderStore(abc.ABC):
    """Reminders: `pending` until `delivered` or, after the last failed attempt, `failed`
    (both final: no method moves a row that is not pending)."""

    @abc.abstractmethod
    async def insert(
        self, agent: str, body: str, file_path: str | None, due_at: str, created_at: str
    ) -> ReminderRow: ...

    @abc.abstractmethod
    async def get(self, rid: int) -> ReminderRow | None: ...

    @abc.abstractmethod
    async def count_pending(self, agent: str) -> int: ...

    async def count_pending_many(self, agents: Sequence[str]) -> dict[str, int]:
        """`count_pending` of each of `agents`; backends answer them in one read."""
        return {a: await self.count_pending(a) for a in agents}

    @abc.abstractmethod
    async def due(self, cutoff: str, limit: int) -> list[ReminderRow]:
        """Pending reminders due at or before `cutoff`, earliest first (then by id)."""

    @abc.abstractmethod
    async def next_due(self) -> str | None:
        """The earliest `due_at` of a pending reminder, if any."""

    @abc.abstractmethod
    async def mark_delivered(self, ids: Collection[int], at: str) -> None:
        """Pending rows among `ids` become `delivered` at `at` (one more attempt counted)."""

    @abc.abstractmethod
    async def record_failure(self, rid: int, error: str, retry_at: str | None) -> ReminderRow:
        """Count a failed attempt of an existing reminder: due again at `retry_at`, or
        `failed` when it is None."""


class ApprovalStore(abc.ABC):
    """Operator approvals: at most one pending `spawn` / `init_config` per agent; a pending
    row is decided at most once; an `approved` row may later become `failed` (`finish`)."""

    @abc.abstractmethod
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
        """Store a pending request; `Conflict` when a `spawn` / `init_config` of `agent` is
        already pending."""

    @abc.abstractmethod
    async def get(self, aid: int) -> ApprovalRow | None: ...

    @abc.abstractmethod
    async def pending(self, *, requested_by: str | None = None) -> list[ApprovalRow]:
        """Pending approvals (of one requester, or all), oldest first."""

    @abc.abstractmethod
    async def recent(self, resolved_limit: int) -> list[ApprovalRow]:
        """Every pending approval plus the newest `resolved_limit` resolved ones, by id."""

    @abc.abstractmethod
    async def decide(
        self,
        aid: int,
        status: ApprovalStatus,
        at: str,
        note: str,
        *,
        requested_by: str | None = None,
    ) -> tuple[ApprovalRow, bool]:
        """Move `aid` from pending to `status`. Returns the row as it now is and whether this
        call moved it (False: already resolved). `NotFound` for an unknown id (or, with
        `requested_by`, one somebody else requested)."""

    @abc.abstractmethod
    async def finish(
        self, aid: int, status: ApprovalStatus, note: str, *, fetched_sha: str | None = None
    ) -> ApprovalRow:
        """Record the outcome of acting on an approved row (`approved` stays or → `failed`;
        a row in any other state is left as it is). `NotFound` for an unknown id."""


class Storage(abc.ABC):
    """Every store of one hive, on one backend, plus its wake-up channel (opened by
    `core/store/backend.open_storage`)."""

    kind: str
    url: str
    messages: MessageStore
    agents: AgentStore
    questions: QuestionStore
    reminders: ReminderStore
    approvals: ApprovalStore
    search: SearchStore  # full-text search over the others plus turn history (docs/search.md)
    permissions: PermissionStore  # tool permission requests and kept rules
    budgets: BudgetStore  # usage, tripped breakers, raises

    def __init__(self) -> None:
        self._remote: list[RemoteMessages] = []
        self._remote_rows: list[RemoteRows] = []

    def on_remote_messages(self, cb: RemoteMessages) -> None:
        """Call `cb(recipients)` when another process commits messages for them."""
        self._remote.append(cb)

    def on_remote_rows(self, cb: RemoteRows) -> None:
        """Call `cb(rows)` when another process commits these rows (its notification carried
        them). Without such a callback, the rows' recipients go to `on_remote_messages`."""
        self._remote_rows.append(cb)

    def _remote_committed(self, recipients: Collection[str] | None) -> None:
        for cb in list(self._remote):
            cb(recipients)

    def _remote_arrived(self, rows: Sequence[Message]) -> None:
        if not self._remote_rows:
            self._remote_committed({m.recipient for m in rows})
        for cb in list(self._remote_rows):
            cb(rows)

    @abc.abstractmethod
    async def open(self) -> None: ...

    @abc.abstractmethod
    async def aclose(self) -> None: ...

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
