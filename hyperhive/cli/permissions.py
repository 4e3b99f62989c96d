"""Tool permission commands (over the host socket): `hive permissions [--json]` lists what
waits for the operator; `hive permissions allow|always|deny ID [--note TEXT]` decides one."""

from __future__ import annotations

import json
from typing import Any

import click

from hyperhive.cli.common import Ctx, emit, json_option, pass_ctx, run

INPUT_SHOWN = 400  # characters of one input value in the text listing


def _value(v: Any) -> str:
    text = v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
    return text if len(text) <= INPUT_SHOWN else text[: INPUT_SHOWN - 1] + "…"


def _permissions_text(data: dict[str, Any]) -> str:
    rows = data["permissions"]
    if not rows:
        return "(no pending tool permission requests)"
    out = []
    for p in rows:
        rule = f", matches {p['rule']}" if p.get("rule") else ""
        out.append(
            f"#{p['id']} {p['agent']} asks to use {p['tool']} "
            f"(asked {p['asked_at'][:19]}Z, expires {p['deadline_at'][:19]}Z{rule})"
        )
        if p.get("reason"):
            out.append(f"    why: {p['reason']}")
        for key, value in p.get("input", {}).items():
            lines = _value(value).splitlines() or [""]
            out.append(f"    {key}: {lines[0]}")
            out.extend(f"      {line}" for line in lines[1:])
    return "\n".join(out)


def _decided_text(data: dict[str, Any]) -> str:
    p = data["permission"]
    text = f"#{p['id']} {p['status']}: {p['agent']} {p['tool']}"
    if p.get("kept_rule"):
        text += f" (kept for {p['agent']}: {p['kept_rule']})"
    if p["status"] != "allowed" and p.get("note"):
        text += f" — {p['note']}"
    return text


@click.group(invoke_without_command=True)
@json_option
@pass_ctx
@click.pass_context
def permissions(click_ctx: click.Context, ctx: Ctx, as_json: bool) -> None:
    """List the tool permission requests waiting for the operator (oldest first); the
    subcommands decide one."""
    if click_ctx.invoked_subcommand is None:
        emit(run(ctx.host().call("permissions")), as_json, _permissions_text)


def _decide(decision: str, doc: str) -> click.Command:
    @click.command(name=decision, help=doc)
    @click.argument("permission_id", metavar="ID", type=int)
    @click.option(
        "--note",
        "-n",
        default=None,
        envvar="HIVE_PERMISSION_NOTE",
        show_envvar=True,
        help="What the model is told (a denial; default 'denied by the operator').",
    )
    @json_option
    @pass_ctx
    def command(ctx: Ctx, permission_id: int, note: str | None, as_json: bool) -> None:
        fields: dict[str, Any] = {"id": permission_id, "decision": decision}
        if note is not None:
            fields["note"] = note
        emit(run(ctx.host().call("decide_permission", **fields)), as_json, _decided_text)

    return command


permissions.add_command(_decide("allow", "Allow request ID once."))
permissions.add_command(
    _decide(
        "always",
        "Allow request ID and keep its narrowest rule for this agent: the same use is "
        "allowed without asking until the agent is destroyed.",
    )
)
permissions.add_command(_decide("deny", "Deny request ID; --note is what the model sees."))

COMMANDS = [permissions]
