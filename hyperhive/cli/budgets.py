"""`hive budgets`: each agent's use against its budget limits, and its breaker."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from hyperhive.cli.common import Column, Ctx, emit, json_option, pass_ctx, run, table

SHORT = {
    "tokens_per_hour": "tok/h",
    "tokens_per_day": "tok/d",
    "cost_usd_per_hour": "$/h",
    "cost_usd_per_day": "$/d",
    "turns_per_hour": "turns/h",
}


def _amount(key: str, v: float) -> str:
    return f"{v:.2f}" if "cost" in key else f"{v:g}"


def _cell(row: dict[str, Any], key: str) -> str:
    for u in row["limits"]:
        if u["key"] == key:
            if not u["limit"]:
                return f"{_amount(key, u['used'])}/-"
            return f"{_amount(key, u['used'])}/{_amount(key, u['limit'])}"
    return "-"


def _cell_of(key: str) -> Callable[[dict[str, Any]], str]:
    return lambda row: _cell(row, key)


def _text(data: dict[str, Any]) -> str:
    cols: list[Column] = [("AGENT", lambda r: r["agent"])]
    cols += [(SHORT[k], _cell_of(k)) for k in SHORT]
    cols.append(("USED", lambda r: f"{r['worst']:.0%}"))
    cols.append(
        ("BREAKER", lambda r: f"TRIPPED: {r['tripped']['reason']}" if r.get("tripped") else "ok")
    )
    h = data["hive"]
    limit = _amount(h["key"], h["limit"]) if h["limit"] else "-"
    hive_line = f"hive cost today: {_amount(h['key'], h['used'])} of {limit}"
    return table(cols, data["agents"], "(no agents)") + "\n" + hive_line


@click.command()
@json_option
@pass_ctx
def budgets(ctx: Ctx, as_json: bool) -> None:
    """Show each agent's use against its budget limits (rolling hour and day)."""
    answer = run(ctx.host().call("budgets"))
    answer.pop("ok", None)
    answer.pop("version", None)
    emit(answer, as_json, _text)


COMMANDS = [budgets]
