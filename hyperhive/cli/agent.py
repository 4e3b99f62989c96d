"""`hive agent serve` (run a harness) and `hive stats NAME` (its turn stats)."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from hyperhive.cli.common import Ctx, emit, json_option, pass_ctx, run, setup_logging
from hyperhive.errors import HiveError, NotFound
from hyperhive.names import validate_name


@click.group()
def agent() -> None:
    """Run an agent's harness (normally started by the hive inside the agent's sandbox)."""


@agent.command("serve")
@click.option(
    "--socket",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="HIVE_AGENT_SOCKET",
    show_envvar=True,
    help="The agent's hive socket [default: /run/hive/hive.sock].",
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="HIVE_STATE_DIR",
    show_envvar=True,
    help="The agent's state dir [default: /state].",
)
@click.option(
    "--web-socket",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="HIVE_WEB_SOCKET",
    show_envvar=True,
    help="Serve the agent's page here [default: web/web.sock beside --socket].",
)
@click.option("--no-web", is_flag=True, help="Do not serve the agent's page.")
@pass_ctx
def serve(
    ctx: Ctx, socket: Path | None, state_dir: Path | None, web_socket: Path | None, no_web: bool
) -> None:
    """Loop: wait for mail, run one Claude Code turn, record it, repeat."""
    from hyperhive.harness.main import serve as serve_harness

    setup_logging(ctx.verbose, logging.INFO)
    serve_harness(socket, state_dir, web_socket, no_web)


def _fmt_stats(data: dict[str, object]) -> str:
    rows = data["recent"]
    totals = data["totals"]
    assert isinstance(rows, list) and isinstance(totals, dict)
    lines = ["started              kind             ms   in/out tokens   cost     tools"]
    for r in rows:
        tools = ", ".join(f"{k}×{v}" for k, v in r["tool_breakdown"].items())
        cost = f"${r['cost_usd']:.4f}" if r["cost_usd"] is not None else "-"
        lines.append(
            f"{r['started_at'][:19]}  {r['result_kind']:<15} {r['duration_ms']:>6}  "
            f"{r['input_tokens']:>6}/{r['output_tokens']:<6}  {cost:<8} {tools}"
        )
    if totals:
        lines.append(
            f"total: {totals['turns']} turns ({totals['ok'] or 0} ok), "
            f"{totals['input_tokens']}/{totals['output_tokens']} tokens, ${totals['cost_usd']:.4f}, "
            f"{totals['tool_calls']} tool calls"
        )
    return "\n".join(lines)


def _is_registered(ctx: Ctx, name: str) -> bool:
    """Whether the daemon manages `name` (an agent without a state dir yet, e.g. external)."""
    try:
        answer = run(ctx.host().call("list"))
    except HiveError:
        return False
    return name in answer.get("agents", [])


@click.command()
@click.argument("name")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 10000))
@json_option
@pass_ctx
def stats(ctx: Ctx, name: str, limit: int, as_json: bool) -> None:
    """Recent turns of agent NAME and totals (from its turn-stats store)."""
    from hyperhive.harness.stats import read_stats

    validate_name(name)
    if not ctx.paths.agent_dir(name).is_dir() and not _is_registered(ctx, name):
        raise NotFound(f'no agent "{name}" here (nor kept state of one): see `hive list`')
    rows, totals = read_stats(ctx.paths.state_dir(name), limit)
    emit({"recent": rows, "totals": totals}, as_json, _fmt_stats)


COMMANDS = [agent, stats]
