"""The part of an agent's applied config that its harness runs with, read from the core's
`config` answer (`{"model", "config": AgentConfig as JSON, "role_prompt"}`).

Invariants:
- The core's `hyperhive.agentconfig.AgentConfig` (pydantic) is the one validator of
  `agent.toml`; the harness does not validate it again (nor import pydantic: it boots on every
  spawn and idles in every sandbox). This view only checks the shapes it relies on, so a core
  that sent something else fails the harness's start with a clear `ConfigError`, not a
  `TypeError` in the middle of a turn.
- Missing keys mean the `AgentConfig` defaults (empty lists and tables).
- Extra MCP server entries stay raw: `hyperhive.harness.settings.mcp_config` checks each one
  and skips a bad one with a warning rather than failing the agent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hyperhive.errors import ConfigError


@dataclass(frozen=True)
class AgentView:
    """What the harness reads of `AgentConfig`: tool rules, extra MCP servers, environment."""

    allowed_tools: tuple[str, ...] = ()
    denied_tools: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    extra_mcp_servers: Mapping[str, Any] = field(default_factory=dict)
    # the core sends the agent's list, or the hive's default when the agent has none
    ask_operator_for: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: object) -> AgentView:
        """The view of an `AgentConfig` dumped as JSON (keys the harness does not use are
        ignored); raises `ConfigError` naming the key whose shape is wrong."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"agent config from the core: expected an object, got {data!r}")
        return cls(
            allowed_tools=_strings(data, "allowed_tools"),
            denied_tools=_strings(data, "denied_tools"),
            env=_string_table(data, "env"),
            extra_mcp_servers=dict(_table(data, "extra_mcp_servers")),
            ask_operator_for=_strings(data, "ask_operator_for"),
        )


def _table(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ConfigError(f"agent config from the core: {key}: expected a table, got {value!r}")
    return value


def _string_table(data: Mapping[str, Any], key: str) -> dict[str, str]:
    table = _table(data, key)
    if not all(isinstance(v, str) for v in table.values()):
        raise ConfigError(f"agent config from the core: {key}: values must be strings")
    return dict(table)


def _strings(data: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = data.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(
            f"agent config from the core: {key}: expected a list of strings, got {value!r}"
        )
    return tuple(value)
