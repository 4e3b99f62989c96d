"""Approval commands: approvals [show ID], approve, deny, request-spawn (over the host socket)."""

from __future__ import annotations

from typing import Any

import click

from hyperhive.cli.common import Ctx, emit, json_option, pass_ctx, run


def _row_line(a: dict[str, Any]) -> str:
    what = a["kind"]
    sha = a.get("fetched_sha")
    if sha:
        what += f" {sha[:12]}"
    who = a.get("requested_by") or "?"
    line = (
        f"#{a['id']} {what} for {a['agent']} by {who} ({a['requested_at'][:19]}Z) [{a['status']}]"
    )
    return line


def _approvals_text(data: dict[str, Any]) -> str:
    rows = data["approvals"]
    if not rows:
        return "(no pending approvals)"
    out = []
    for a in rows:
        out.append(_row_line(a))
        if a.get("description"):
            out.extend(f"    {line}" for line in a["description"].splitlines())
        if a.get("note"):
            out.append(f"    note: {a['note']}")
    return "\n".join(out)


def _style_diff(diff: str) -> str:
    """Colour a unified diff; `click.echo` drops the colours when stdout is not a terminal."""
    out = []
    for line in diff.splitlines():
        if line.startswith(("+++", "---", "diff --git", "index ")):
            out.append(click.style(line, bold=True))
        elif line.startswith("+"):
            out.append(click.style(line, fg="green"))
        elif line.startswith("-"):
            out.append(click.style(line, fg="red"))
        elif line.startswith("@@"):
            out.append(click.style(line, fg="cyan"))
        else:
            out.append(line)
    return "\n".join(out)


@click.group(invoke_without_command=True)
@click.option(
    "--all",
    "show_all",
    is_flag=True,
    envvar="HIVE_APPROVALS_ALL",
    show_envvar=True,
    help="Also list recently resolved approvals.",
)
@json_option
@pass_ctx
@click.pass_context
def approvals(click_ctx: click.Context, ctx: Ctx, show_all: bool, as_json: bool) -> None:
    """List approvals waiting for the operator (oldest first); `show ID` for one and its diff."""
    if click_ctx.invoked_subcommand is not None:
        return
    answer = run(ctx.host().call("pending"))
    if not show_all:
        answer = {
            **answer,
            "approvals": [a for a in answer["approvals"] if a["status"] == "pending"],
        }
    emit(answer, as_json, _approvals_text)


@approvals.command()
@click.argument("approval_id", metavar="ID", type=int)
@json_option
@pass_ctx
def show(ctx: Ctx, approval_id: int, as_json: bool) -> None:
    """One approval and, while it is pending, the diff it would apply."""
    answer = run(ctx.host().call("approval", id=approval_id))
    if as_json:
        emit(answer, True)
        return
    a = answer["approval"]
    click.echo(_approvals_text({"approvals": [a]}))
    if a.get("resolved_at"):
        click.echo(f"    resolved {a['resolved_at'][:19]}Z")
    diff = answer.get("diff")
    if diff is not None:
        click.echo("")
        click.echo(_style_diff(diff) if diff else "(no changes against the applied config)")


def _resolved(a: dict[str, Any]) -> str:
    row = a["approval"]
    note = f": {row['note']}" if row.get("note") else ""
    return f"#{row['id']} {row['status']}{note}"


@click.command()
@click.argument("approval_id", metavar="ID", type=int)
@click.option("--note", "-n", default=None, help="A note for the requester.")
@json_option
@pass_ctx
def approve(ctx: Ctx, approval_id: int, note: str | None, as_json: bool) -> None:
    """Approve ID; the core acts at once (spawn, seed, apply + rebuild)."""
    emit(run(ctx.host().call("approve", id=approval_id, note=note)), as_json, _resolved)


@click.command()
@click.argument("approval_id", metavar="ID", type=int)
@click.option("--note", "-n", default=None, help="Why (sent to the requester).")
@json_option
@pass_ctx
def deny(ctx: Ctx, approval_id: int, note: str | None, as_json: bool) -> None:
    """Deny ID; the requester is told."""
    emit(run(ctx.host().call("deny", id=approval_id, note=note)), as_json, _resolved)


@click.command(name="request-spawn")
@click.argument("name")
@click.option("--description", "-d", default="", help="What the agent is for.")
@click.option("--node", default=None, help="The node to run it on (a hive across nodes).")
@json_option
@pass_ctx
def request_spawn(ctx: Ctx, name: str, description: str, node: str | None, as_json: bool) -> None:
    """Queue a spawn of NAME for approval (revives a kept agent's config and credentials)."""
    args = {"node": node} if node else {}
    answer = run(ctx.host().call("request_spawn", name=name, description=description, **args))
    emit(
        answer,
        as_json,
        lambda a: f"queued approval #{a['id']}: spawn {name} (hive approve {a['id']})",
    )


COMMANDS = [approvals, approve, deny, request_spawn]
