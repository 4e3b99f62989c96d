"""The storage interfaces the core talks to. A PostgreSQL backend for multi-host hives
implements these same methods; callers never see SQL.

Invariants: ids are monotonic; `insert_messages` returns only after the rows are durable and
runs its `on_commit` hook exactly when they become visible;
`undelivered` returns oldest first; nothing here decides policy (who may send to whom).
Generations: `insert_messages` stamps each row with its recipient's current generation, and
`undelivered`, `count_undelivered` and `recent` see only rows of the current one.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Collection, Sequence

from hyperhive.core.records import AgentRecord, Message, NewMessage


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
