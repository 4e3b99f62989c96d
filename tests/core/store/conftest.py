"""One contract suite per store, run against every backend (`BACKENDS`): the sqlite backend
on a real database file, PostgreSQL on a fresh database of the session's throwaway cluster
(`tests/support/postgres.py`), and the in-memory fake. A new backend adds its name here and a
branch in `make_store`, and must pass the same tests."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from hyperhive.core.store import memory
from hyperhive.core.store.approvals_sqlite import SqliteApprovalStore
from hyperhive.core.store.base import (
    AgentStore,
    ApprovalStore,
    MessageStore,
    QuestionStore,
    ReminderStore,
)
from hyperhive.core.store.budgets_sqlite import SqliteBudgetStore
from hyperhive.core.store.permissions_sqlite import SqlitePermissionStore
from hyperhive.core.store.pg.approvals import PgApprovalStore
from hyperhive.core.store.pg.budgets import PgBudgetStore
from hyperhive.core.store.pg.db import PgDb
from hyperhive.core.store.pg.followups import PgQuestionStore, PgReminderStore
from hyperhive.core.store.pg.messages import PgAgentStore, PgMessageStore
from hyperhive.core.store.pg.permissions import PgPermissionStore
from hyperhive.core.store.questions_sqlite import SqliteQuestionStore
from hyperhive.core.store.reminders_sqlite import SqliteReminderStore
from hyperhive.core.store.sqlite import SqliteAgentStore, SqliteMessageStore
from hyperhive.core.store.sqlite_migrations import MIGRATIONS
from hyperhive.db import Database

BACKENDS = ["sqlite", "postgresql", "memory"]
_PG = {
    SqliteMessageStore: PgMessageStore,
    SqliteAgentStore: PgAgentStore,
    SqliteQuestionStore: PgQuestionStore,
    SqliteReminderStore: PgReminderStore,
    SqliteApprovalStore: PgApprovalStore,
    SqlitePermissionStore: PgPermissionStore,
    SqliteBudgetStore: PgBudgetStore,
}
S = TypeVar("S")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def make_store(
    backend: str, short_tmp: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Callable[..., Any]]:
    """`make_store(SqliteClass, MemoryClass)` → a store of this backend. Every store of one
    test shares one backend: one database file or PostgreSQL database, or one in-memory agent
    store (where the others read agents' generations, as the sqlite stores read the agents
    table)."""
    pg: PgDb | None = None
    if backend == "postgresql":
        pg = PgDb(request.getfixturevalue("pg_url")())
        await pg.open()
    async with Database(short_tmp / "hive.sqlite", MIGRATIONS) as db:
        shared_agents = memory.MemoryAgentStore()

        def make(sqlite_cls: Callable[[Database], S], memory_cls: Callable[..., S]) -> S:
            if backend == "sqlite":
                return sqlite_cls(db)
            if pg is not None:
                return _PG[sqlite_cls](pg)  # type: ignore[index,no-any-return]
            if memory_cls is memory.MemoryAgentStore:
                return shared_agents  # type: ignore[return-value]
            if "agents" in inspect.signature(memory_cls).parameters:
                return memory_cls(shared_agents)
            return memory_cls()

        try:
            yield make
        finally:
            if pg is not None:
                await pg.aclose()


@pytest.fixture
def messages(make_store: Callable[..., Any]) -> MessageStore:
    store: MessageStore = make_store(SqliteMessageStore, memory.MemoryMessageStore)
    return store


@pytest.fixture
def agents(make_store: Callable[..., Any]) -> AgentStore:
    store: AgentStore = make_store(SqliteAgentStore, memory.MemoryAgentStore)
    return store


@pytest.fixture
def questions(make_store: Callable[..., Any]) -> QuestionStore:
    store: QuestionStore = make_store(SqliteQuestionStore, memory.MemoryQuestionStore)
    return store


@pytest.fixture
def reminders(make_store: Callable[..., Any]) -> ReminderStore:
    store: ReminderStore = make_store(SqliteReminderStore, memory.MemoryReminderStore)
    return store


@pytest.fixture
def approvals(make_store: Callable[..., Any]) -> ApprovalStore:
    store: ApprovalStore = make_store(SqliteApprovalStore, memory.MemoryApprovalStore)
    return store
