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
@click.option(
    "--db",
    metavar="URL",
    default=None,
    help="Also run on this PostgreSQL database (a scratch schema, dropped after), beside "
    "sqlite in the same run.",
)
@click.option(
    "--nodes",
    type=click.IntRange(1, 8),
    default=None,
    help="With --db: spread the agents over N `hive serve` nodes on that database (cross-node "
    "wake; then one node is killed: see docs/multihost.md).",
)
@json_option
def broker(
    agents: int,
    messages: int,
    rate: float | None,
    senders: int,
    db: str | None,
    nodes: int | None,
    as_json: bool,
) -> None:
    """Send→recv-wake latency and throughput through a real daemon over unix sockets."""
    from hyperhive.bench.broker import run_broker_bench, run_broker_compare

    if nodes is not None:
        from hyperhive.bench.nodes import run_nodes_bench
        from hyperhive.bench.scratchdb import scratch_schema

        if not db:
            raise click.UsageError("--nodes needs --db postgresql://... (shared by the nodes)")
        base = run_broker_bench(agents, messages, rate, senders)
        with scratch_schema(db) as url:
            across = run_nodes_bench(url, nodes, agents, messages, rate, senders)
        if as_json:
            click.echo("[" + base.to_json() + ", " + across.to_json() + "]")
        else:
            click.echo(base.human() + "\n" + across.human())
        return
    if db is None:
        result = run_broker_bench(agents, messages, rate, senders)
        click.echo(result.to_json() if as_json else result.human())
        return
    results = run_broker_compare(agents, messages, rate, senders, db)
    if as_json:
        click.echo("[" + ", ".join(r.to_json() for r in results) + "]")
    else:
        click.echo("\n".join(r.human() for r in results))


@bench.command("budgets")
@click.option("--agents", default=20, show_default=True, type=click.IntRange(1, 500))
@click.option("--turns", default=50, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--scrapes", default=20, show_default=True, type=click.IntRange(1, 10_000))
@json_option
def budgets(agents: int, turns: int, scrapes: int, as_json: bool) -> None:
    """What metering costs: report_turn (store + limit check) and a /metrics scrape."""
    from hyperhive.bench.budgets import run_budgets_bench

    result = run_budgets_bench(agents, turns, scrapes)
    click.echo(result.to_json() if as_json else result.human())


@bench.command("turn")
@click.option("--turns", default=10, show_default=True, type=click.IntRange(1, 1000))
@click.option(
    "--runtime",
    type=click.Choice(["bwrap", "process"]),
    default=None,
    help="Default: bwrap where it works.",
)
@json_option
def turn(turns: int, runtime: str | None, as_json: bool) -> None:
    """The harness's own overhead per turn (time not spent in the Claude Code CLI)."""
    from hyperhive.bench.turn import run_turn_bench

    result = run_turn_bench(turns, runtime)
    click.echo(result.to_json() if as_json else result.human())


@bench.command("spawn")
@click.option(
    "--agents",
    default=5,
    show_default=True,
    type=click.IntRange(1, 100),
    envvar="HIVE_BENCH_AGENTS",
    show_envvar=True,
    help="Agents to spawn, one at a time.",
)
@json_option
def spawn(agents: int, as_json: bool) -> None:
    """Spawn-to-ready time and idle memory of sandboxed agents (a throwaway hive on bwrap)."""
    from hyperhive.bench.spawn import run_spawn_bench

    result = run_spawn_bench(agents, progress=lambda msg: click.echo(msg, err=True))
    click.echo(result.to_json() if as_json else result.human())


@bench.command("hop")
@click.option("--rounds", default=10, show_default=True, type=click.IntRange(1, 1000))
@click.option(
    "--runtime",
    type=click.Choice(["bwrap", "process"]),
    default=None,
    help="Default: bwrap where it works.",
)
@json_option
def hop(rounds: int, runtime: str | None, as_json: bool) -> None:
    """Message hop latency (operator → alice → bob → operator), cold and warm, and RSS."""
    from hyperhive.bench.hop import run_hop_bench

    result = run_hop_bench(rounds, runtime, progress=lambda msg: click.echo(msg, err=True))
    click.echo(result.to_json() if as_json else result.human())


@bench.command("search")
@click.option("--messages", default=100_000, show_default=True, type=click.IntRange(1, 5_000_000))
@click.option("--turns", default=10_000, show_default=True, type=click.IntRange(20, 1_000_000))
@click.option("--rounds", default=2, show_default=True, type=click.IntRange(1, 100))
@json_option
def search(messages: int, turns: int, rounds: int, as_json: bool) -> None:
    """Search latency over the host socket on a filled hive database (docs/search.md)."""
    from hyperhive.bench.search import run_search_bench

    result = run_search_bench(messages, turns, rounds)
    click.echo(result.to_json() if as_json else result.human())


COMMANDS: list[click.Command] = [bench]
