"""Agent commands: spawn, list, status, pause/unpause."""

from __future__ import annotations

from typing import Any

import click

from hyperhive.cli.common import Column, Ctx, done, emit, json_option, pass_ctx, run, table
from hyperhive.names import validate_new_name


@click.command()
@click.argument("name")
@click.option(
    "--runtime",
    type=click.Choice(["bwrap", "process", "external", "fake"]),
    envvar="HIVE_RUNTIME",
    show_envvar=True,
    help="Where the agent runs.",
)
@click.option(
    "--keep-mail",
    is_flag=True,
    help="Reviving kept state: also deliver the previous incarnation's unread mail.",
)
@click.option(
    "--node",
    metavar="NODE",
    help="The node (host) to run it on [default: the live node with the most free memory].",
)
@json_option
@pass_ctx
def spawn(
    ctx: Ctx, name: str, runtime: str | None, keep_mail: bool, node: str | None, as_json: bool
) -> None:
    """Create agent NAME now (the operator needs no approval)."""
    validate_new_name(name)
    body: dict[str, Any] = {"cmd": "spawn", "name": name}
    if node:
        body["node"] = node
    if keep_mail:
        body["keep_mail"] = True
    if runtime:
        body["runtime"] = runtime
    run(ctx.host().request(body))
    done(as_json, "spawn", [name], f"spawned {name}")


@click.command("list")
@json_option
@pass_ctx
def list_(ctx: Ctx, as_json: bool) -> None:
    """List agent names."""
    answer = run(ctx.host().call("list"))
    emit(answer["agents"], as_json, lambda names: "\n".join(names))


def _flags(row: dict[str, Any]) -> str:
    flags = [k for k in ("failed", "paused", "needs_login", "needs_update") if row.get(k)]
    return ",".join(flags) or "-"


def _state(row: dict[str, Any]) -> str:
    return str(row.get("state") or ("running" if row.get("running") else "stopped"))


def _notes(row: dict[str, Any]) -> str:
    extra = []
    if row.get("state_note"):
        extra.append(f"({row['state_note']})")
    if row.get("transient"):
        extra.append(f"◐ {row['transient']}…")
    if row.get("oom_kills"):
        extra.append(f"{row['oom_kills']} OOM-killed")
    if row.get("unread"):
        extra.append(f"{row['unread']} unread")
    if row.get("pending_reminders"):
        n = row["pending_reminders"]
        extra.append(f"{n} reminder{'' if n == 1 else 's'}")
    if row.get("status_text"):
        extra.append(f"“{row['status_text']}”")
    return "  ".join(extra)


STATUS_COLUMNS: list[Column] = [
    ("NAME", lambda r: str(r["name"])),
    ("KIND", lambda r: str(r.get("kind", ""))),
    ("STATE", _state),
    ("FLAGS", _flags),
    ("MODEL", lambda r: str(r.get("active_model", ""))),
    ("NOTES", _notes),
]


@click.command()
@json_option
@pass_ctx
def status(ctx: Ctx, as_json: bool) -> None:
    """Show every agent's status: its one STATE (stopped, starting, idle, in_turn,
    waiting_operator, failed, crashed, paused, ...; see docs/operations.md) and flags."""
    answer = run(ctx.host().call("agent_status"))
    rows = answer["agent_statuses"]
    columns = STATUS_COLUMNS
    if len({r.get("node") for r in rows}) > 1:  # a hive across hosts: say where each runs
        columns = [*STATUS_COLUMNS[:1], ("NODE", lambda r: str(r.get("node", ""))), *columns[1:]]
    emit(rows, as_json, lambda rs: table(columns, rs, "(no agents)"))


@click.command()
@click.argument("name")
@json_option
@pass_ctx
def pause(ctx: Ctx, name: str, as_json: bool) -> None:
    """Pause NAME: its messages queue, its harness takes no turns."""
    run(ctx.host().call("set_paused", name=name, paused=True))
    done(as_json, "pause", [name], f"paused {name}")


@click.command()
@click.argument("name")
@json_option
@pass_ctx
def unpause(ctx: Ctx, name: str, as_json: bool) -> None:
    """Resume NAME."""
    run(ctx.host().call("set_paused", name=name, paused=False))
    done(as_json, "unpause", [name], f"unpaused {name}")


COMMANDS = [spawn, list_, status, pause, unpause]
