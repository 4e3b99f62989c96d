"""The budget store's interface (`BudgetStore`) and its records: per-turn usage rows, tripped
breakers and operator-granted raises. Backends: `budgets_sqlite` (migration 0007) and the
in-memory fake `budgets_memory`; one contract suite (`tests/core/store/test_budgets_contract`).

Invariants:
- A breaker trips at most once at a time per agent: `trip` is decided by the store (the loser
  of a race gets False), and `clear` ends it once (True only for the call that removed it).
- Times are ISO strings from `hyperhive.clock.iso` (they sort in time order); a window sum
  counts rows with `at >= since`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class UsageSum:
    tokens: int = 0
    cost_usd: float = 0.0
    turns: int = 0


@dataclass(frozen=True)
class Trip:
    agent: str
    key: str  # the limit that tripped (budgetconfig.LIMIT_KEYS, hive_cost_usd_per_day, runaway_*)
    reason: str
    tripped_at: str
    raise_by: float  # what "raise the limit by X" adds
    question_id: int | None = None


class BudgetStore(Protocol):
    async def add_usage(
        self, agent: str, at: str, model: str, tokens: int, cost_usd: float
    ) -> None:
        """Record one turn's usage."""
        ...

    async def sums(self, agent: str | None, since: str) -> UsageSum:
        """Usage since `since` of one agent (None: every agent)."""
        ...

    async def sweep(self, before: str) -> int:
        """Drop usage rows older than `before`, and raises that ended before it; how many rows."""
        ...

    async def trip(self, trip: Trip) -> bool:
        """Record a tripped breaker; False if that agent's breaker is already tripped."""
        ...

    async def set_question(self, agent: str, question_id: int | None) -> None: ...

    async def trips(self) -> list[Trip]:
        """Every tripped breaker, by agent name."""
        ...

    async def clear(self, agent: str) -> bool:
        """End `agent`'s trip; False if it was not tripped."""
        ...

    async def add_raise(self, agent: str, key: str, amount: float, until: str) -> None:
        """The operator raised `agent`'s `key` limit by `amount` until `until`."""
        ...

    async def raises(self, agent: str, now: str) -> dict[str, float]:
        """The raises in force at `now`, summed per limit key."""
        ...
