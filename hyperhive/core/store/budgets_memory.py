"""In-memory `BudgetStore` for fast unit tests (same contract as `budgets_sqlite`)."""

from __future__ import annotations

import dataclasses

from hyperhive.core.store.budgets_base import BudgetStore, Trip, UsageSum


class MemoryBudgetStore(BudgetStore):
    def __init__(self) -> None:
        self._usage: list[tuple[str, str, str, int, float]] = []
        self._trips: dict[str, Trip] = {}
        self._raises: list[tuple[str, str, float, str]] = []

    async def add_usage(
        self, agent: str, at: str, model: str, tokens: int, cost_usd: float
    ) -> None:
        self._usage.append((agent, at, model, tokens, cost_usd))

    async def sums(self, agent: str | None, since: str) -> UsageSum:
        rows = [u for u in self._usage if u[1] >= since and (agent is None or u[0] == agent)]
        return UsageSum(sum(u[3] for u in rows), float(sum(u[4] for u in rows)), len(rows))

    async def sweep(self, before: str) -> int:
        n = len(self._usage)
        self._usage = [u for u in self._usage if u[1] >= before]
        self._raises = [r for r in self._raises if r[3] >= before]
        return n - len(self._usage)

    async def trip(self, trip: Trip) -> bool:
        if trip.agent in self._trips:
            return False
        self._trips[trip.agent] = trip
        return True

    async def set_question(self, agent: str, question_id: int | None) -> None:
        t = self._trips.get(agent)
        if t is not None:
            self._trips[agent] = dataclasses.replace(t, question_id=question_id)

    async def trips(self) -> list[Trip]:
        return [self._trips[a] for a in sorted(self._trips)]

    async def clear(self, agent: str) -> bool:
        return self._trips.pop(agent, None) is not None

    async def add_raise(self, agent: str, key: str, amount: float, until: str) -> None:
        self._raises.append((agent, key, amount, until))

    async def raises(self, agent: str, now: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for a, key, amount, until in self._raises:
            if a == agent and until > now:
                out[key] = out.get(key, 0.0) + amount
        return out
