"""Reporting a finished turn's usage to the core (`report_turn`), for budgets and metrics.

Invariants: best-effort and bounded — a core that is down, slow or too old to know the verb
costs the turn at most `TIMEOUT` seconds and never fails it (the turn-stats row is the
harness's own record either way). The figures are the turn-stats row's.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from hyperhive.client.agent import AgentClient
from hyperhive.harness.stats import TurnStatRow

logger = logging.getLogger(__name__)

TIMEOUT = 5.0
TOOLS_MAX = 200


def report_body(row: TurnStatRow) -> dict[str, Any]:
    tools = dict(sorted(row.tool_breakdown.items())[:TOOLS_MAX])
    return {
        "cmd": "report_turn",
        "model": row.model[:200],
        "result_kind": row.result_kind[:40] or "ok",
        "duration_ms": max(0, row.duration_ms),
        "input_tokens": max(0, row.input_tokens),
        "output_tokens": max(0, row.output_tokens),
        "cache_read_tokens": max(0, row.cache_read_tokens),
        "cache_creation_tokens": max(0, row.cache_creation_tokens),
        "cost_usd": max(0.0, row.cost_usd or 0.0),
        "tool_calls": {k[:200]: max(0, v) for k, v in tools.items()},
    }


async def report_turn(client: AgentClient, row: TurnStatRow, agent: str) -> bool:
    """Send the row's usage; True when the core stored it."""
    try:
        answer = await asyncio.wait_for(client.request_answer(report_body(row)), TIMEOUT)
    except Exception as exc:
        logger.info(
            "report_turn failed: %r", exc, extra={"action": "usage_report_failed", "agent": agent}
        )
        return False
    ok = bool(answer.body.get("ok"))
    if not ok and answer.body.get("code") != "not_supported":
        logger.info(
            "the core refused a usage report: %s",
            answer.body.get("error"),
            extra={"action": "usage_report_refused", "agent": agent},
        )
    return ok
