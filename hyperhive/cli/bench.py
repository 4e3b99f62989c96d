"""`hive bench ...`: benchmarks that print measured figures."""

from __future__ import annotations

import click

from hyperhive.cli.common import json_option


@click.group()
def bench() -> None:
    """Measure the hive (figures go in docs/benchmarks.md)."""


@bench.command("broker")
@click.option("--agents", default=50, show_default=True, type=click.IntRange(1, 500))
@click.option("--messages", default=5000, show_default=True, type=click.IntRange(1, 1_000_000))
@click.option(
    "--rate",
    type=click.FloatRange(min=1),
    default=None,
    help="Pace sends at R msg/s (default: unpaced).",
)
@click.option(
    "--senders",
    default=4,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Concurrent sender connections.",
)
@json_option
def broker(agents: int, messages: int, rate: float | None, senders: int, as_json: bool) -> None:
    """Send→recv-wake latency and throughput through a real daemon over unix sockets."""
    from hyperhive.bench.broker import run_broker_bench

    result = run_broker_bench(agents, messages, rate, senders)
    click.echo(result.to_json() if as_json else result.human())


COMMANDS: list[click.Command] = [bench]
