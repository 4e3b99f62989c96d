"""`hive serve`: run the core daemon in the foreground until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal

import click

from hyperhive.aio import aio_run
from hyperhive.cli.common import Ctx, pass_ctx, setup_logging
from hyperhive.core.hive import Hive

logger = logging.getLogger(__name__)


async def serve_forever(ctx: Ctx) -> None:
    async with Hive(ctx.paths) as hive:
        gc.freeze()  # start-up objects are long-lived: keep them out of every collection
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, hive.request_stop)
        click.echo(
            f"hive serving at {ctx.paths.home} (host socket {ctx.paths.host_sock})", err=True
        )
        await hive.wait_closed()


@click.command()
@pass_ctx
def serve(ctx: Ctx) -> None:
    """Run the hive core daemon in the foreground (clean shutdown on SIGINT/SIGTERM)."""
    setup_logging(ctx.verbose, logging.INFO)
    aio_run(serve_forever(ctx))


COMMANDS = [serve]
