"""Domain records the core stores and passes around (pure, frozen, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

AgentKind = Literal["agent", "manager"]


@dataclass(frozen=True)
class Message:
    id: int
    sender: str
    recipient: str
    body: str
    kind: str  # message | event | reminder
    sent_at: str
    delivered_at: str | None = None
    recipient_generation: int = 0  # the recipient's incarnation (0: the operator)
    trace_parent: str | None = None  # W3C traceparent of the sender's span (tracing)


@dataclass(frozen=True)
class NewMessage:
    sender: str
    recipient: str
    body: str
    kind: str = "message"
    trace_parent: str | None = None


@dataclass(frozen=True)
class AgentRecord:
    name: str
    kind: AgentKind
    created_at: str
    generation: int = 1
    runtime: str = "external"
    paused: bool = False
    status_text: str | None = None
    status_set_at: str | None = None
    parent: str | None = None
    model: str | None = None
