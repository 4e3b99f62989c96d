"""`hive sim`: run the scripted model server in the foreground until SIGINT/SIGTERM.

Prints one line with the base URL on stdout once listening (with port 0, the real port), then
logs every request. SIGHUP reloads the scenario file (a bad file is logged and the old scenario
kept). Signal handling for the server lives here and nowhere else.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

import click

from hyperhive.cli.common import Ctx, setup_logging
from hyperhive.errors import HiveError, Unavailable
from hyperhive.sim import Scenario, SimServer

logger = logging.getLogger(__name__)

LOG_LIMIT = 100  # requests (with their ~100 kB bodies) kept in memory by a long-running server


def parse_listen(value: str) -> tuple[str, int]:
    """`HOST:PORT` (IPv6 as `[::1]:PORT`) → (host, port)."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise click.BadParameter(f"expected HOST:PORT, got {value!r}", param_hint="--listen")
    return host.strip("[]"), int(port)


async def serve(path: Path, host: str, port: int) -> None:
    """Serve the scenario at `path` until SIGINT/SIGTERM."""
    scenario = Scenario.load(path)
    sim = SimServer(scenario, host, port, log_limit=LOG_LIMIT)
    try:
        await sim.start()
    except OSError as exc:
        raise Unavailable(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def reload() -> None:
        try:
            sim.set_scenario(Scenario.load(path))
        except HiveError as exc:
            logger.error(
                "reload failed, keeping the old scenario: %s",
                exc,
                extra={"action": "sim.reload_failed"},
            )
        else:
            logger.info("reloaded %s", path, extra={"action": "sim.reload"})

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, reload)
    try:
        click.echo(f"hive sim listening on {sim.base_url}")
        logger.info(
            "scenario %s: %d rules; agents use %s",
            path,
            len(scenario.rules),
            sim.url_for("<agent>"),
            extra={"action": "sim.serving"},
        )
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        await sim.close()


@click.command()
@click.argument(
    "scenario",
    envvar="HIVE_SIM_SCENARIO",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
)
@click.option(
    "--listen",
    envvar="HIVE_SIM_LISTEN",
    show_envvar=True,
    default="127.0.0.1:8787",
    show_default=True,
    help="Address to serve the Messages API on (port 0 picks a free port).",
)
def sim(scenario: Path, listen: str) -> None:
    """Serve a scripted model (SCENARIO, a .toml or .json file; env HIVE_SIM_SCENARIO).

    Point Claude Code at it with ANTHROPIC_BASE_URL=http://HOST:PORT/a/AGENT. SIGHUP reloads
    the scenario; SIGINT/SIGTERM stop the server.
    """
    host, port = parse_listen(listen)
    ctx = click.get_current_context().find_object(Ctx)
    setup_logging(ctx.verbose if ctx is not None else 0, logging.INFO)
    if not (ctx and ctx.verbose):
        logging.getLogger("uvicorn").setLevel(logging.WARNING)  # its start/stop lines are noise
    asyncio.run(serve(scenario, host, port))


COMMANDS = [sim]
