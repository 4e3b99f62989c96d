"""The budget store's contract, for every backend: window sums per agent and for the hive,
sweeping, one trip at a time per agent (decided by the store), raises in force."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from hyperhive.core.store.budgets_base import BudgetStore, Trip, UsageSum
from hyperhive.core.store.budgets_memory import MemoryBudgetStore
from hyperhive.core.store.budgets_sqlite import SqliteBudgetStore


@pytest.fixture
def store(make_store: Callable[..., Any]) -> BudgetStore:
    s: BudgetStore = make_store(SqliteBudgetStore, MemoryBudgetStore)
    return s


T0 = "2026-01-01T00:00:00.000000Z"
T1 = "2026-01-01T01:00:00.000000Z"
T2 = "2026-01-01T02:00:00.000000Z"


async def test_sums_by_window_and_agent(store: BudgetStore) -> None:
    await store.add_usage("alice", T0, "haiku", 100, 0.5)
    await store.add_usage("alice", T1, "haiku", 10, 0.25)
    await store.add_usage("bob", T1, "sonnet", 1, 1.0)
    assert await store.sums("alice", T0) == UsageSum(110, 0.75, 2)
    assert await store.sums("alice", T1) == UsageSum(10, 0.25, 1)
    assert await store.sums(None, T1) == UsageSum(11, 1.25, 2)
    assert await store.sums("carol", T0) == UsageSum()


async def test_sweep_drops_old_rows_only(store: BudgetStore) -> None:
    await store.add_usage("alice", T0, "", 1, 0.0)
    await store.add_usage("alice", T2, "", 2, 0.0)
    await store.add_raise("alice", "tokens_per_hour", 5, T0)
    await store.add_raise("alice", "tokens_per_day", 7, T2 + "x")
    assert await store.sweep(T1) == 1
    assert await store.sums("alice", T0) == UsageSum(2, 0.0, 1)
    assert await store.raises("alice", "2025") == {"tokens_per_day": 7}  # swept: the other


async def test_a_breaker_trips_once_until_cleared(store: BudgetStore) -> None:
    t = Trip("alice", "cost_usd_per_day", "over", T0, 2.5)
    assert await store.trip(t) is True
    assert await store.trip(Trip("alice", "turns_per_hour", "again", T1, 1)) is False
    await store.set_question("alice", 7)
    [got] = await store.trips()
    assert got == Trip("alice", "cost_usd_per_day", "over", T0, 2.5, 7)
    assert await store.clear("alice") is True
    assert await store.clear("alice") is False
    assert await store.trips() == []
    assert await store.trip(t) is True


async def test_raises_in_force_are_summed_per_key(store: BudgetStore) -> None:
    await store.add_raise("alice", "cost_usd_per_day", 1.0, T2)
    await store.add_raise("alice", "cost_usd_per_day", 0.5, T2)
    await store.add_raise("alice", "turns_per_hour", 3, T1)
    await store.add_raise("bob", "turns_per_hour", 9, T2)
    assert await store.raises("alice", T0) == {"cost_usd_per_day": 1.5, "turns_per_hour": 3}
    assert await store.raises("alice", T1) == {"cost_usd_per_day": 1.5}  # ended at T1
