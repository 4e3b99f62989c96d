"""The `PermissionStore` contract, run against every backend (see conftest)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from hyperhive.core.store.permissions_base import PermissionStore
from hyperhive.core.store.permissions_memory import MemoryPermissionStore
from hyperhive.core.store.permissions_sqlite import SqlitePermissionStore
from hyperhive.errors import NotFound
from hyperhive.wire.permissions import PermissionStatus

T0 = "2026-01-01T00:00:00.000000Z"
T1 = "2026-01-01T00:01:00.000000Z"
T2 = "2026-01-01T00:02:00.000000Z"


@pytest.fixture
def perms(make_store: Callable[..., Any]) -> PermissionStore:
    store: PermissionStore = make_store(SqlitePermissionStore, MemoryPermissionStore)
    return store


async def ask(store: PermissionStore, agent: str = "alice", key: str = "k1", **kw: Any) -> Any:
    fields: dict[str, Any] = dict(
        agent=agent,
        generation=1,
        harness="h1",
        key=key,
        tool="Bash",
        tool_input={"command": "git push", "nested": {"ü": [1, 2]}},
        asked_at=T0,
        deadline_at=T2,
    )
    fields.update(kw)
    return await store.insert(**fields)


async def test_insert_get_pending(perms: PermissionStore) -> None:
    row, created = await ask(perms, reason="rule", rule="Bash(git push:*)", tool_use_id="tu1")
    assert created and row.pending and row.id >= 1
    assert row.input == {"command": "git push", "nested": {"ü": [1, 2]}}
    assert (row.reason, row.rule, row.tool_use_id) == ("rule", "Bash(git push:*)", "tu1")
    assert await perms.get(row.id) == row
    assert await perms.get(row.id + 100) is None
    other, _ = await ask(perms, agent="bob", key="k1")
    assert other.id > row.id
    assert [r.id for r in await perms.pending()] == [row.id, other.id]
    assert [r.id for r in await perms.pending("bob")] == [other.id]


async def test_same_key_joins_the_request(perms: PermissionStore) -> None:
    row, _ = await ask(perms)
    assert await perms.by_key("alice", "k1") == row
    assert await perms.by_key("alice", "k2") is None
    assert await perms.by_key("bob", "k1") is None
    again, created = await ask(perms, tool="Write")
    assert not created and again == row
    await perms.decide(row.id, PermissionStatus.ALLOWED, T1)
    decided, created = await ask(perms)
    assert not created and decided.status is PermissionStatus.ALLOWED


async def test_decided_once(perms: PermissionStore) -> None:
    row, _ = await ask(perms)
    won, ok = await perms.decide(row.id, PermissionStatus.DENIED, T1, "no", None)
    assert ok and won.status is PermissionStatus.DENIED and won.note == "no"
    assert won.decided_at == T1
    lost, ok2 = await perms.decide(row.id, PermissionStatus.ALLOWED, T2, "", "Bash")
    assert not ok2 and lost == won
    with pytest.raises(NotFound):
        await perms.decide(row.id + 100, PermissionStatus.ALLOWED, T1)
    assert await perms.pending() == []


async def test_concurrent_decisions_one_wins(perms: PermissionStore) -> None:
    row, _ = await ask(perms)
    results = await asyncio.gather(
        *(perms.decide(row.id, PermissionStatus.ALLOWED, T1, str(i)) for i in range(5))
    )
    assert sum(1 for _, won in results if won) == 1


async def test_stale_overdue_deadline(perms: PermissionStore) -> None:
    a, _ = await ask(perms, key="a", deadline_at=T2)
    b, _ = await ask(perms, key="b", harness="h2", deadline_at=T1)
    c, _ = await ask(perms, agent="bob", key="c", deadline_at=T1)
    assert await perms.stale("alice", "h2") == [a.id]
    assert await perms.stale("alice") == [a.id, b.id]
    assert await perms.stale("carol") == []
    assert await perms.overdue(T1) == [b.id, c.id]
    assert await perms.overdue(T1, limit=1) == [b.id]
    assert await perms.next_deadline() == T1
    await perms.decide(b.id, PermissionStatus.EXPIRED, T1)
    await perms.decide(c.id, PermissionStatus.EXPIRED, T1)
    assert await perms.overdue(T2) == [a.id]
    assert await perms.next_deadline() == T2
    await perms.decide(a.id, PermissionStatus.DROPPED, T1)
    assert await perms.next_deadline() is None


async def test_kept_rules(perms: PermissionStore) -> None:
    assert await perms.rules("alice", 1) == []
    await perms.keep_rule("alice", 1, "Bash(git push)", T0)
    await perms.keep_rule("alice", 1, "Write(//etc/x)", T0)
    await perms.keep_rule("alice", 1, "Bash(git push)", T1)  # no-op
    assert await perms.rules("alice", 1) == ["Bash(git push)", "Write(//etc/x)"]
    assert await perms.rules("alice", 2) == []  # a new incarnation keeps none
    assert await perms.rules("bob", 1) == []
    assert await perms.forget_rule("alice", 1, "Bash(git push)")
    assert not await perms.forget_rule("alice", 1, "Bash(git push)")
    assert await perms.rules("alice", 1) == ["Write(//etc/x)"]
