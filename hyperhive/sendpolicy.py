"""Who may message whom: the rule of `allowed_recipients`, pure, for both sides.

The MCP server in the sandbox checks it to answer the model early; the core checks it again on
every send (the sandbox is not trusted). Invariants: an empty list allows everyone; the
manager and the operator are always allowed, so an agent is never stranded without an
escalation path (its harness reports a turn it could not handle to both); a whitelist forbids
broadcast (`*`).
"""

from __future__ import annotations

from collections.abc import Sequence

from hyperhive.names import BROADCAST, OPERATOR


def may_send(to: str, allowed: Sequence[str], manager: str) -> bool:
    return not allowed or to in (manager, OPERATOR) or (to in allowed and to != BROADCAST)


def refusal(sender: str, to: str, allowed: Sequence[str], manager: str) -> str:
    """What the model (or the sending client) is told when `may_send` says no."""
    listed = ", ".join(sorted({*allowed, manager}))
    return (
        f"refused: {sender} may only message {listed}. Send your request to the manager "
        f"({manager}) and ask it to route it to {to!r}."
    )
