"""`hive serve`: run the core daemon in the foreground until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal

import click

from hyperhive import tracing
from hyperhive.aio import aio_run
from hyperhive.assembly import build_hive
from hyperhive.cli.common import Ctx, pass_ctx, setup_logging
from hyperhive.config import HiveConfig, load_config

logger = logging.getLogger(__name__)


def with_dashboard(config: HiveConfig, listen: str | None) -> HiveConfig:
    """`config` with the dashboard address replaced (None: unchanged)."""
    if not listen:
        return config
    return config.model_copy(
        update={"dashboard": config.dashboard.model_copy(update={"listen": listen})}
    )


def _check_listen(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    from hyperhive.web.dashboard.security import split_listen

    try:
        split_listen(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


async def serve_forever(
    ctx: Ctx,
    dashboard: str | None = None,
    db: str | None = None,
    node: str | None = None,
    peer: str | None = None,
) -> None:
    config = with_dashboard(load_config(ctx.paths.config_file), dashboard)
    if peer:
        config = config.model_copy(
            update={"node": config.node.model_copy(update={"peer_listen": peer})}
        )
    async with build_hive(ctx.paths, config, database=db, node=node) as hive:
        gc.freeze()  # start-up objects are long-lived: keep them out of every collection
        # every request allocates a few dozen short-lived containers; collecting the young
        # generation every 20,000 instead of 700 allocations costs ~10 % less CPU per message
        # (`hive bench broker`, A/B on this machine) and a few hundred KB at most
        gc.set_threshold(20_000, 20, 20)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, hive.request_stop)
        click.echo(
            f"hive serving at {ctx.paths.home} (host socket {ctx.paths.host_sock})", err=True
        )
        url = hive.dashboard_url or None
        if url:
            click.echo(f"dashboard: {url}", err=True)
        await hive.wait_stop_request()


@click.command()
@click.option(
    "--dashboard",
    metavar="HOST:PORT",
    envvar="HIVE_DASHBOARD",
    show_envvar=True,
    callback=_check_listen,
    help="Where the operator dashboard listens [default: [dashboard] listen in hive.toml, "
    "else 127.0.0.1:7000]. Port 0 picks a free port; a non-loopback address needs "
    "[dashboard] token_file.",
)
@click.option(
    "--db",
    metavar="URL",
    default=None,
    help="Where the hive's data lives: postgresql://USER@HOST/DB, or sqlite:///PATH "
    "[default: HIVE_DATABASE_URL, else [database] url in hive.toml, else hive.db in the home].",
)
@click.option(
    "--node",
    metavar="NAME",
    envvar="HIVE_NODE",
    show_envvar=True,
    help="This host's node name in a hive across hosts [default: [node] name, else the host "
    "name]. See docs/multihost.md.",
)
@click.option(
    "--peer-listen",
    metavar="HOST:PORT",
    envvar="HIVE_PEER_LISTEN",
    show_envvar=True,
    callback=_check_listen,
    help="Where other nodes reach this one [default: [node] peer_listen, 127.0.0.1:0].",
)
@pass_ctx
def serve(
    ctx: Ctx, dashboard: str | None, db: str | None, node: str | None, peer_listen: str | None
) -> None:
    """Run the hive core daemon in the foreground (clean shutdown on SIGINT/SIGTERM)."""
    setup_logging(ctx.verbose, logging.INFO)
    try:
        aio_run(serve_forever(ctx, dashboard, db, node, peer_listen))
    finally:
        tracing.shutdown()  # flush the last spans (a no-op when tracing is off)


COMMANDS = [serve]
