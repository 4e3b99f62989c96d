"""The per-agent config file `agent.toml` (lives in the agent's config repo; the *applied*
checkout under `DIR/applied/<name>/` is what runs).

Invariants: unknown keys and bad values are `ConfigError`s naming the dotted key; a missing
applied config means "all defaults"; nothing here touches git or the runtime.

"Packages" without Nix: `packages.ro_paths` are extra host paths bound read-only into the
sandbox at the same path (a tool installed on the host), and `packages.pip` lists Python
requirements installed into a per-agent venv under `/state/.venv` when the agent is rebuilt.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from hyperhive.budgetconfig import AgentBudget
from hyperhive.config import check_permission_rules, parse_toml_model

MCP_KEY_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ExtraMcpServer(_Strict):
    command: str = Field(min_length=1)
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    allowed_tools: list[str] = Field(default_factory=lambda: ["*"])


class AgentLimits(_Strict):
    memory_mb: int | None = Field(default=None, ge=0)
    pids: int | None = Field(default=None, ge=0)
    cpu_percent: int | None = Field(default=None, ge=0)


class Packages(_Strict):
    ro_paths: list[str] = Field(default_factory=list)
    pip: list[str] = Field(default_factory=list)

    @field_validator("ro_paths")
    @classmethod
    def _absolute(cls, v: list[str]) -> list[str]:
        for p in v:
            if not p.startswith("/") or ".." in Path(p).parts:
                raise ValueError(f"{p!r} must be an absolute path without '..'")
        return v


class AgentConfig(_Strict):
    model: str | None = None
    role_prompt: str | None = None  # file name inside the config repo
    allowed_recipients: list[str] = Field(default_factory=list)
    extra_mcp_servers: dict[str, ExtraMcpServer] = Field(default_factory=dict)
    allowed_tools: list[str] = Field(default_factory=list)
    denied_tools: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    limits: AgentLimits = Field(default_factory=AgentLimits)
    network: Literal["none", "egress", "host"] | None = None
    # nested user namespaces inside the sandbox (e.g. a tool that sandboxes itself with bwrap);
    # refused by a seccomp filter otherwise (docs/security.md)
    allow_user_namespaces: bool = False
    runtime: Literal["bwrap", "process", "external", "fake"] | None = None
    packages: Packages = Field(default_factory=Packages)
    turn_timeout_seconds: float | None = Field(default=None, ge=0)  # default: the hive's
    budget: AgentBudget = Field(default_factory=AgentBudget)  # default: hive.toml [budgets]
    warm_seconds: float | None = Field(default=None, ge=0)  # default: the hive's
    # tool patterns whose use waits for the operator's OK (docs/permissions.md); None: the
    # hive's `defaults.ask_operator_for`, [] asks nothing
    ask_operator_for: list[str] | None = None

    @field_validator("ask_operator_for")
    @classmethod
    def _ask_rules(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else check_permission_rules(v)

    @field_validator("role_prompt")
    @classmethod
    def _plain_file(cls, v: str | None) -> str | None:
        if v is not None and (v.startswith("/") or ".." in Path(v).parts):
            raise ValueError("must be a file name inside the config repo")
        return v


def parse_agent_config(text: str, source: str = "agent.toml") -> AgentConfig:
    return parse_toml_model(AgentConfig, text, source)


def load_agent_config(path: Path) -> AgentConfig:
    """`path` is an agent.toml; a missing file means all defaults."""
    if not path.exists():
        return AgentConfig()
    return parse_agent_config(path.read_text(encoding="utf-8"), str(path))


TEMPLATE = """\
# agent.toml: this agent's configuration. Changes take effect only after the operator
# approves a `request_apply_commit` for the commit that contains them.

# model = "haiku"                 # default: the hive's defaults.model
# role_prompt = "role.md"         # appended to the system prompt
allowed_recipients = []           # empty = may message anyone; the manager is always allowed
allowed_tools = []                # extra tools to allow, e.g. ["Bash(git:*)"]
denied_tools = []                 # extra tools to deny
# network = "egress"              # none | egress | host
# runtime = "bwrap"               # bwrap | process | external (default: the hive's)
# allow_user_namespaces = false   # true: tools inside may create user namespaces
# turn_timeout_seconds = 1800     # interrupt a longer turn (0 = no limit); default: the hive's
# warm_seconds = 600              # keep claude running between turns (0 = one per turn)
# ask_operator_for = ["Bash(git push:*)", "mcp__github__*"]  # wait for the operator's OK

[env]

[limits]                          # default: the hive's [limits] (1024 MiB, 512 pids)
# memory_mb = 1024
# pids = 512
# cpu_percent = 100

[budget]                          # default: the hive's [budgets.defaults]; 0 = no limit
# cost_usd_per_day = 5.0
# tokens_per_hour = 200000
# turns_per_hour = 60

[packages]
ro_paths = []                     # host paths bound read-only at the same path
pip = []                          # installed into /state/.venv on rebuild

# [extra_mcp_servers.example]
# command = "/usr/bin/example-mcp"
# args = []
# env = {}
# allowed_tools = ["*"]
"""
