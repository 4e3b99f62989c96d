"""`hive search QUERY`: full-text search over messages, operator questions, approvals and
every agent's turn history (the host verb `search`; docs/search.md)."""

from __future__ import annotations

from typing import Any

import click

from hyperhive.cli.common import Ctx, emit, json_option, pass_ctx, run
from hyperhive.wire.search import KINDS, LIMIT_MAX, parse_since


def _snippet(segments: list[list[Any]]) -> str:
    return "".join(
        click.style(str(text), bold=True, underline=True) if on else str(text)
        for text, on in segments
    ).replace("\n", " ")


def _hits_text(answer: dict[str, Any]) -> str:
    lines = []
    for h in answer["hits"]:
        where = f"  {h['link']}" if h.get("link") else ""
        lines.append(f"{h['ts'][:19]} {h['kind']:<8} {h['agent']}: {h['title']}{where}")
        lines.append(f"    {_snippet(h['snippet'])}")
    return "\n".join(lines) or "(no match)"


@click.command()
@click.argument("query", nargs=-1, required=True)
@click.option("--agent", default=None, help="Only rows this agent took part in.")
@click.option("--since", default=None, help="Only the last DURATION (e.g. 30m, 2h, 7d).")
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    type=click.Choice(KINDS),
    help="Only these kinds (repeatable; default: all).",
)
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, LIMIT_MAX))
@json_option
@pass_ctx
def search(
    ctx: Ctx,
    query: tuple[str, ...],
    agent: str | None,
    since: str | None,
    kinds: tuple[str, ...],
    limit: int,
    as_json: bool,
) -> None:
    """Search the hive's history: messages, questions, approvals, turns (newest first).

    Words are ANDed; "a phrase" in quotes matches in order; word* matches a prefix."""
    fields: dict[str, Any] = {"query": " ".join(query), "limit": limit}
    if agent is not None:
        fields["agent"] = agent
    if since is not None:
        fields["since_seconds"] = parse_since(since)
    if kinds:
        fields["kinds"] = list(kinds)
    emit(run(ctx.host().call("search", **fields)), as_json, _hits_text)


COMMANDS = [search]
