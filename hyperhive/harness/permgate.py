"""The seam between the CLI driver and whoever decides tool permissions.

When Claude Code asks its host whether it may use a tool (the control protocol's
`can_use_tool` request, as the claude-agent-sdk speaks it), the driver in `harness/` asks a
`PermissionGate` and answers the CLI with the decision. The gate may take as long as it needs
(asking the operator); the turn waits meanwhile.

Invariants: the gate never raises for a refusal — it returns `Deny` with a message the model
sees; `Allow.updated_input`, when set, replaces the tool's input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Allow:
    updated_input: dict[str, Any] | None = None


@dataclass(frozen=True)
class Deny:
    message: str = ""
    interrupt: bool = False  # also stop the turn


PermissionDecision = Allow | Deny


@dataclass(frozen=True)
class PermissionAsk:
    tool_name: str
    tool_input: dict[str, Any] = field(default_factory=dict)
    tool_use_id: str | None = None
    reason: str | None = None  # the CLI's `decision_reason`, when it gives one


class PermissionGate(Protocol):
    async def decide(self, ask: PermissionAsk) -> PermissionDecision: ...


class AllowAll:
    """The gate of an agent with nothing to ask: every tool the allow/deny lists let through
    is used without asking."""

    async def decide(self, ask: PermissionAsk) -> PermissionDecision:
        return Allow()
