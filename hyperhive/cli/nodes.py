"""`hive nodes`: the nodes (hosts) of a hive across several (docs/multihost.md)."""

from __future__ import annotations

from typing import Any

import click

from hyperhive.cli.common import Column, Ctx, emit, json_option, pass_ctx, run, table


def _state(r: dict[str, Any]) -> str:
    state = "live" if r.get("live") else "LOST"
    return f"{state} (this)" if r.get("this") else state


NODE_COLUMNS: list[Column] = [
    ("NODE", lambda r: str(r["name"])),
    ("STATE", _state),
    ("HEARTBEAT", lambda r: f"{r['heartbeat_age_seconds']:.1f}s ago"),
    ("AGENTS", lambda r: str(r["agents"])),
    ("LOAD", lambda r: f"{r['load']:.2f}"),
    ("MEM FREE", lambda r: f"{r['mem_free_mb']} MB"),
    ("PEER", lambda r: str(r.get("peer_url") or "-")),
]


@click.command()
@json_option
@pass_ctx
def nodes(ctx: Ctx, as_json: bool) -> None:
    """List the hive's nodes: live or lost, last heartbeat, agents, load, free memory."""
    answer = run(ctx.host().call("nodes"))
    emit(answer["nodes"], as_json, lambda rows: table(NODE_COLUMNS, rows, "(no nodes)"))


COMMANDS = [nodes]
