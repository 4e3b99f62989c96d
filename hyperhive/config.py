"""The hive config file (`DIR/hive.toml`): validated defaults for the whole hive.

Invariant: an unknown key or a bad value is a `ConfigError` whose message names the dotted key
(`retention.messages_days: ...`). A missing file means all defaults. Pure except `load_config`.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hyperhive import permrules
from hyperhive.budgetconfig import Budgets
from hyperhive.errors import ConfigError
from hyperhive.names import NAME_PATTERN

RuntimeName = Literal["bwrap", "process", "external", "fake"]
NetworkMode = Literal["none", "egress", "host"]


def check_permission_rules(v: list[str]) -> list[str]:
    """Permission rules as given, or a `ValueError` naming the first one that is not one."""
    try:
        return permrules.check(v)
    except permrules.RuleError as exc:
        raise ValueError(str(exc)) from None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Defaults(_Strict):
    """Per-agent defaults; an agent's own config may override them."""

    model: str = "haiku"
    runtime: RuntimeName | Literal["auto"] = "auto"
    network: NetworkMode | Literal["auto"] = "auto"
    allowed_recipients: list[str] = Field(default_factory=list)
    # a turn running longer is interrupted and counts as failed (0 = no limit of our own)
    turn_timeout_seconds: float = Field(default=1800.0, ge=0)
    # keep an agent's `claude` process alive this long after a turn (0 = one per turn)
    warm_seconds: float = Field(default=600.0, ge=0)
    # the claude CLI every agent runs (hyperhive.claudebin): "" = HIVE_CLAUDE_BIN, else the
    # CLI bundled with claude-agent-sdk, else `claude` on PATH
    claude_bin: str = ""
    # tool patterns (Claude Code's syntax) whose use waits for the operator's OK; an agent's
    # own `ask_operator_for` replaces this list (docs/permissions.md)
    ask_operator_for: list[str] = Field(default_factory=list)
    # an unanswered tool permission request is denied "[expired]" after this long
    ask_operator_ttl_seconds: float = Field(default=900.0, gt=0, le=86400)

    @field_validator("ask_operator_for")
    @classmethod
    def _rules(cls, v: list[str]) -> list[str]:
        return check_permission_rules(v)


class ModelEndpoint(_Strict):
    """Where agents' Claude Code talks. Empty base_url = Anthropic's API."""

    base_url: str = ""
    api_key_file: str = ""
    rate_limit_wait_seconds: float = Field(default=300.0, ge=0)
    # the CLI's own retries of one request (429, 5xx, 529, connection errors), with backoff
    # and `retry-after` honoured: CLAUDE_CODE_MAX_RETRIES
    retries: int = Field(default=4, ge=0, le=50)
    # a turn that still fails on a transient error is run again, holding its message, up to
    # this many attempts in all; then the failure is reported to the manager and the operator
    turn_attempts: int = Field(default=3, ge=1, le=20)
    # wait before the 2nd attempt (doubling each time; rate limits wait at least
    # rate_limit_wait_seconds or the endpoint's retry-after, whichever is longer)
    retry_wait_seconds: float = Field(default=30.0, ge=0)


DEFAULT_DASHBOARD_PORT = 7000
FREE_PORT_LISTEN = "127.0.0.1:0"  # throwaway hives (benchmarks, the demo): any free port


class Dashboard(_Strict):
    listen: str = f"127.0.0.1:{DEFAULT_DASHBOARD_PORT}"
    token_file: str = ""


class Access(_Strict):
    """Who on this machine may reach the hive. `group` empty: only the owner (the hive home
    is 0700, `host.sock` 0600); a unix group name: its members may read the home (0750) and
    use `host.sock` (0660, that group's). Agents' sockets stay their owners' (0600)."""

    group: str = ""


class Sockets(_Strict):
    """What one agent may hold of the daemon on its socket (`hyperhive.core.servers`)."""

    max_connections_per_agent: int = Field(default=64, ge=1)
    idle_timeout_seconds: float = Field(default=600.0, gt=0)  # between requests; parked: never
    backlog: int = Field(default=4096, ge=16)  # the kernel caps it at net.core.somaxconn
    # a host.sock stream (`subscribe_agent_status`) whose reader takes no line this long is cut
    host_stream_stall_seconds: float = Field(default=30.0, gt=0)


class Retention(_Strict):
    messages_days: float = Field(default=30, gt=0)
    events_days: float = Field(default=7, gt=0)
    events_keep: int = Field(default=2000, ge=1)
    turn_stats_days: float = Field(default=90, gt=0)
    sweep_interval_seconds: float = Field(default=3600, gt=0)


class Limits(_Strict):
    """Default per-agent resource limits (0 = unlimited). Bounded by default: one agent must
    not take the host's memory or process table (docs/security.md); raise them per agent in
    its config's `[limits]` or for the hive here."""

    memory_mb: int = Field(default=1024, ge=0)
    pids: int = Field(default=512, ge=0)
    cpu_percent: int = Field(default=0, ge=0)


class Delivery(_Strict):
    """recv leases (docs/wire.md, "Delivery guarantee"): a batch a client has not acknowledged
    goes back unread once its connection has been silent this long."""

    lease_seconds: float = Field(default=600.0, gt=0)


class NodeCfg(_Strict):
    """This host's part in a hive spread over several (docs/multihost.md). `name` "" means
    `HIVE_NODE`, else the host name; `peer_listen` is where other nodes reach this one
    (forwarded verbs, agent pages; authenticated with the hive secret), `peer_url` what they
    are told to use ("" = the bound address)."""

    name: str = Field(default="", pattern=f"^$|{NAME_PATTERN}")
    peer_listen: str = "127.0.0.1:0"
    peer_url: str = ""
    heartbeat_seconds: float = Field(default=2.0, gt=0)
    lost_after_seconds: float = Field(default=8.0, gt=0)


class DatabaseCfg(_Strict):
    """Where the hive's data lives (`hyperhive.core.store.backend`): "" = the sqlite file in
    the hive home; `postgresql://USER@HOST/DB` = a PostgreSQL database (every node of one hive
    points at the same one). `hive serve --db` and `HIVE_DATABASE_URL` override it."""

    url: str = ""


class ManagerCfg(_Strict):
    name: str = Field(default="manager", pattern=NAME_PATTERN)


class HiveConfig(_Strict):
    defaults: Defaults = Field(default_factory=Defaults)
    model_endpoint: ModelEndpoint = Field(default_factory=ModelEndpoint)
    dashboard: Dashboard = Field(default_factory=Dashboard)
    access: Access = Field(default_factory=Access)
    sockets: Sockets = Field(default_factory=Sockets)
    retention: Retention = Field(default_factory=Retention)
    limits: Limits = Field(default_factory=Limits)
    manager: ManagerCfg = Field(default_factory=ManagerCfg)
    delivery: Delivery = Field(default_factory=Delivery)
    budgets: Budgets = Field(default_factory=Budgets)  # hyperhive.budgetconfig
    node: NodeCfg = Field(default_factory=NodeCfg)
    database: DatabaseCfg = Field(default_factory=DatabaseCfg)


def format_validation_error(source: str, exc: ValidationError) -> str:
    """One line per problem, each naming the dotted key."""
    parts = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(root)"
        if err["type"] == "extra_forbidden":
            parts.append(f"{source}: unknown key {key!r}")
        else:
            parts.append(f"{source}: {key}: {err['msg']}")
    return "; ".join(parts)


M = TypeVar("M", bound=BaseModel)


def parse_toml_model(model: type[M], text: str, source: str) -> M:
    """TOML text validated into `model`; every problem is a `ConfigError` naming the key."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from exc
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(source, exc)) from exc


def parse_config(text: str, source: str = "hive.toml") -> HiveConfig:
    return parse_toml_model(HiveConfig, text, source)


def load_config(path: Path) -> HiveConfig:
    if not path.exists():
        return HiveConfig()
    return parse_config(path.read_text(encoding="utf-8"), str(path))
