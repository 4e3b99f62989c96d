"""Message commands: send, inbox, recv, call (speak an agent's socket by hand)."""

from __future__ import annotations

import json
from typing import Any

import click

from hyperhive.cli.common import Ctx, emit, json_option, pass_ctx, run
from hyperhive.client.agent import NO_RETRY, AgentClient
from hyperhive.errors import BadRequest
from hyperhive.names import OPERATOR, validate_name


def _rows_text(rows: list[dict[str, Any]]) -> str:
    out = []
    for r in rows:
        mark = " " if r.get("delivered_at") else "*"
        out.append(f"{mark} #{r['id']} {r['sent_at'][:19]} {r['from']} → {r['to']}: {r['body']}")
    return "\n".join(out) or "(empty)"


@click.command()
@click.argument("to")
@click.argument("body")
@click.option(
    "--as",
    "as_",
    default=OPERATOR,
    show_default=True,
    envvar="HIVE_AS",
    show_envvar=True,
    help="Send as the operator, or as an agent (through its socket).",
)
@json_option
@pass_ctx
def send(ctx: Ctx, to: str, body: str, as_: str, as_json: bool) -> None:
    """Send BODY to TO (an agent, `operator` or `*`)."""
    if as_ == OPERATOR:
        answer = run(ctx.host().call("send", to=to, body=body))
    else:
        answer = run(_agent_call(ctx, as_, {"cmd": "send", "to": to, "body": body}))
    emit(
        answer,
        as_json,
        lambda a: f"sent #{', #'.join(map(str, a['ids']))} to {', '.join(a['recipients'])}",
    )


async def _agent_call(ctx: Ctx, name: str, body: dict[str, Any]) -> dict[str, Any]:
    validate_name(name)
    async with AgentClient(ctx.paths.agent_sock(name), retry=NO_RETRY) as client:
        return await client.request(body)


@click.command()
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
@click.option("--mark-read", is_flag=True, help="Mark the shown messages read.")
@json_option
@pass_ctx
def inbox(ctx: Ctx, limit: int, mark_read: bool, as_json: bool) -> None:
    """Show the operator's inbox (newest first; * = unread)."""
    answer = run(ctx.host().call("inbox", limit=limit, mark_read=mark_read))
    emit(answer, as_json, lambda a: _rows_text(a["rows"]))


@click.command()
@click.option("--as", "as_", required=True, envvar="HIVE_AS", show_envvar=True, help="Agent name.")
@click.option(
    "--wait",
    "wait_seconds",
    type=click.FloatRange(0, 180),
    default=0,
    show_default=True,
    help="Park up to this many seconds for mail.",
)
@click.option("--max", "max_", type=click.IntRange(1, 32), default=8, show_default=True)
@json_option
@pass_ctx
def recv(ctx: Ctx, as_: str, wait_seconds: float, max_: int, as_json: bool) -> None:
    """Take unread messages from an agent's inbox, as that agent (acknowledged once shown)."""

    async def go() -> None:
        validate_name(as_)
        async with AgentClient(ctx.paths.agent_sock(as_), retry=NO_RETRY) as client:
            answer = await client.recv(wait_seconds, max_)
            emit(answer, as_json, _recv_text)
            if answer["messages"]:
                await client.ack()  # after printing: a kill before this re-offers them

    run(go())


def _recv_text(a: dict[str, Any]) -> str:
    more = f"\n({a['remaining']} more unread)" if a["remaining"] else ""
    return _rows_text(a["messages"]) + more


@click.command()
@click.option("--as", "as_", required=True, envvar="HIVE_AS", show_envvar=True, help="Agent name.")
@click.argument("verb")
@click.argument("fields", required=False, default="{}")
@pass_ctx
def call(ctx: Ctx, as_: str, verb: str, fields: str) -> None:
    """Send one VERB request with JSON FIELDS on an agent's socket, exactly as its harness
    would, and print the raw answer (ok:false answers are printed too, exit status 1)."""
    try:
        extra = json.loads(fields)
    except ValueError as exc:
        raise BadRequest(f"FIELDS is not valid JSON: {exc}") from None
    if not isinstance(extra, dict):
        raise BadRequest("FIELDS must be a JSON object")

    async def go() -> dict[str, Any]:
        validate_name(as_)
        async with AgentClient(ctx.paths.agent_sock(as_), retry=NO_RETRY) as client:
            return (await client.request_answer({**extra, "cmd": verb})).body

    answer = run(go())
    click.echo(json.dumps(answer, indent=2, ensure_ascii=False))
    if not answer.get("ok"):
        raise SystemExit(1)


COMMANDS = [send, inbox, recv, call]
