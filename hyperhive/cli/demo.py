"""`hive demo`."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from hyperhive.aio import aio_run
from hyperhive.cli.common import Ctx, pass_ctx, setup_logging


@click.command()
@click.option(
    "--stay", is_flag=True, help="Keep the hive (and dashboard) running after the scenario."
)
@click.option(
    "--runtime",
    type=click.Choice(["bwrap", "process"]),
    envvar="HIVE_DEMO_RUNTIME",
    show_envvar=True,
    help="Where agents run [default: bwrap where it works, else process].",
)
@click.option("--timeout", default=180.0, show_default=True, type=click.FloatRange(10, 3600))
@pass_ctx
def demo(ctx: Ctx, stay: bool, runtime: str | None, timeout: float) -> None:
    """Play the demo hive: operator → manager → alice → manager → operator, offline.

    Uses a fresh temporary hive home unless --home / HIVE_HOME is given."""
    from hyperhive.demo import run_demo

    setup_logging(ctx.verbose, logging.WARNING)
    home = ctx.paths.home if click.get_current_context().find_root().params.get("home") else None
    raise SystemExit(aio_run(run_demo(Path(home) if home else None, stay, runtime, timeout)))


COMMANDS = [demo]
