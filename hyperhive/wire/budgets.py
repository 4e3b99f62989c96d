"""Budget wire messages: the harness's per-turn usage report (`report_turn`, agent socket) and
the operator's view of use against limits (`budgets`, host socket). Pure types; no I/O.

Invariants: counts are non-negative and bounded; `report_turn` is best-effort from the
harness's side (a turn never waits on it) but once the core answers ok the usage is stored.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from hyperhive.wire.base import Request, Response, verb

BIG = 10**12  # a bound on any one count (tokens, ms)
TOOLS_MAX = 200  # distinct tool names in one turn's breakdown
TRACE_MAX = 55  # a W3C traceparent: 00-<32 hex>-<16 hex>-<2 hex>


@verb("agent")
class ReportTurn(Request):
    """One finished turn's usage, as the CLI reported it (the harness's turn-stats row)."""

    cmd: Literal["report_turn"]
    model: str = Field(default="", max_length=200)
    result_kind: str = Field(default="ok", min_length=1, max_length=40)
    duration_ms: int = Field(default=0, ge=0, le=BIG)
    input_tokens: int = Field(default=0, ge=0, le=BIG)
    output_tokens: int = Field(default=0, ge=0, le=BIG)
    cache_read_tokens: int = Field(default=0, ge=0, le=BIG)
    cache_creation_tokens: int = Field(default=0, ge=0, le=BIG)
    cost_usd: float = Field(default=0.0, ge=0, le=1e6)
    tool_calls: dict[str, int] = Field(default_factory=dict, max_length=TOOLS_MAX)
    wake_id: int | None = Field(default=None, ge=1)


class LimitUse(BaseModel):
    """One limit of one agent (or the hive): what is used in its window, against what."""

    model_config = ConfigDict(frozen=True)
    key: str  # budgetconfig.LIMIT_KEYS, or "hive_cost_usd_per_day"
    used: float
    limit: float  # 0 = no limit
    fraction: float  # used / limit (0 when unlimited)


class BreakerView(BaseModel):
    model_config = ConfigDict(frozen=True)
    reason: str
    tripped_at: str
    question_id: int | None = None


class AgentBudgetRow(BaseModel):
    model_config = ConfigDict(frozen=True)
    agent: str
    limits: list[LimitUse]
    worst: float  # the highest fraction among its limits (the meter)
    tripped: BreakerView | None = None


@verb("host")
class BudgetsReq(Request):
    cmd: Literal["budgets"]


class BudgetsOk(Response):
    agents: list[AgentBudgetRow]
    hive: LimitUse
