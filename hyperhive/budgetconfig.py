"""Budget limits as configured: the hive's `[budgets]` table (hive.toml) and an agent's own
`[budget]` table (agent.toml). Pure types; no I/O.

Invariants: every limit is a non-negative number and 0 means "no limit"; an agent's limit that
is not set (None) falls back to the hive's default (`effective_limits`). Tokens are input +
output tokens as the CLI reports them (cache reads are not counted: they are cheap and would
drown the signal).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

# the limits a budget has, by key; (window seconds, what is measured)
LIMIT_KEYS: dict[str, tuple[float, str]] = {
    "tokens_per_hour": (3600.0, "tokens"),
    "tokens_per_day": (86400.0, "tokens"),
    "cost_usd_per_hour": (3600.0, "cost_usd"),
    "cost_usd_per_day": (86400.0, "cost_usd"),
    "turns_per_hour": (3600.0, "turns"),
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AgentLimitsCfg(_Strict):
    """One agent's limits (0 = unlimited)."""

    tokens_per_hour: float = Field(default=0, ge=0)
    tokens_per_day: float = Field(default=0, ge=0)
    cost_usd_per_hour: float = Field(default=0, ge=0)
    cost_usd_per_day: float = Field(default=0, ge=0)
    turns_per_hour: float = Field(default=0, ge=0)


class AgentBudget(_Strict):
    """An agent's `[budget]` in agent.toml: None = the hive's default."""

    tokens_per_hour: float | None = Field(default=None, ge=0)
    tokens_per_day: float | None = Field(default=None, ge=0)
    cost_usd_per_hour: float | None = Field(default=None, ge=0)
    cost_usd_per_day: float | None = Field(default=None, ge=0)
    turns_per_hour: float | None = Field(default=None, ge=0)


class Budgets(_Strict):
    """hive.toml `[budgets]`."""

    defaults: AgentLimitsCfg = Field(default_factory=AgentLimitsCfg)
    hive_cost_usd_per_day: float = Field(default=0, ge=0)  # every agent together; 0 = none
    warn_fraction: float = Field(default=0.8, gt=0, lt=1)  # the warning before the trip
    # "raise the limit by X": X = this fraction of the limit that tripped
    raise_fraction: float = Field(default=0.5, gt=0, le=10)
    # runaway guard (0 = off): messages one agent sends in a minute; messages two agents
    # exchange with each other in a minute (both directions)
    runaway_messages_per_minute: int = Field(default=120, ge=0)
    runaway_exchanges_per_minute: int = Field(default=60, ge=0)


def effective_limits(hive: Budgets, agent: AgentBudget | None) -> dict[str, float]:
    """The limits that apply to one agent, by `LIMIT_KEYS` key (0 = unlimited)."""
    out: dict[str, float] = {}
    for key in LIMIT_KEYS:
        own = getattr(agent, key) if agent is not None else None
        out[key] = float(own if own is not None else getattr(hive.defaults, key))
    return out
