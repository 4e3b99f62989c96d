"""What needs the operator, gathered from every source: the dashboard's attention bar and tab
title (`hyperhive.wire.attention` holds the types).

Sources: the core's own (`core_attention`: failed or crashed agents from the derived agent
states — for an agent another live node runs, the state in the status row that node pushed
(`core/noderelay.py`), so every node counts the whole hive — unread operator mail from the
broker) plus every running feature that implements
`AttentionSource` (questions, approvals, and any feature added later — tool permissions,
budgets — without an edit here).

Invariants: `gather` only reads; a source that fails is logged and left out (the bar never
breaks the page); items of the same kind from several sources are summed into one; the result
is in a stable order (the known kinds first, then by kind) and keeps zero counts (the page
hides them), so a count that drops to zero is seen to drop.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from hyperhive.core.agentstate import AgentState
from hyperhive.names import OPERATOR
from hyperhive.wire.attention import AttentionItem, AttentionSource

if TYPE_CHECKING:
    from hyperhive.core.hive import Hive

logger = logging.getLogger(__name__)

FAILING = frozenset({AgentState.FAILED, AgentState.CRASHED, AgentState.NODE_LOST})
ORDER = ("questions", "approvals", "permissions", "failed_agents", "operator_mail", "budgets")


async def core_attention(hive: Hive) -> list[AttentionItem]:
    """The core's own items: failed / crashed agents and unread operator mail."""
    states: dict[str, str] = {n: s.state for n, s in hive.agent_states.current().items()}
    relay = getattr(hive.feature("nodes"), "relay", None) if hive.runs("nodes") else None
    if relay is not None:
        for name in hive.registry.names():
            row = relay.row(name)
            if row is not None and row.state is not None:
                states[name] = row.state
    failing = sum(1 for state in states.values() if state in FAILING)
    return [
        AttentionItem(
            kind="failed_agents",
            count=failing,
            label="failed or crashed agents",
            href="#containers?state=failing",
        ),
        AttentionItem(
            kind="operator_mail",
            count=await hive.broker.unread(OPERATOR),
            label="unread operator mail",
            href="#inbox",
        ),
    ]


async def gather(hive: Hive) -> list[AttentionItem]:
    """Every source's items, one per kind (counts summed), in a stable order."""
    items = list(await core_attention(hive))
    for feature in hive.features:
        if not isinstance(feature, AttentionSource):
            continue
        try:
            items.extend(await feature.attention())
        except Exception:
            logger.exception(
                "attention source %s failed",
                getattr(feature, "name", type(feature).__name__),
                extra={"action": "attention_failed"},
            )
    merged: dict[str, AttentionItem] = {}
    for item in items:
        prev = merged.get(item.kind)
        merged[item.kind] = (
            item if prev is None else prev.model_copy(update={"count": prev.count + item.count})
        )
    rank = {k: i for i, k in enumerate(ORDER)}
    return sorted(merged.values(), key=lambda i: (rank.get(i.kind, len(ORDER)), i.kind))
