"""One `/api/state` build (the dashboard's shared state: every agent's status row, the
attention counts, the open items) in a filled hive, on sqlite and on PostgreSQL (a throwaway
cluster of Debian's PostgreSQL 15, `tests.support.postgres.PgCluster`): its time (median and
max of `--rounds`) and how many database reads one build makes. A refresh reads each store once
for all agents (`core/status.py`); before, it read them once per agent. Not a test: figures go
to docs/benchmarks.md.

    .venv/bin/python scripts/bench_state.py [--agents 100] [--messages 5000] [--unread 500]
        [--rounds 10] [--backend sqlite --backend postgresql]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hyperhive.assembly import build_hive
from hyperhive.budgetconfig import Budgets
from hyperhive.core.hive import Hive
from hyperhive.paths import HivePaths
from hyperhive.runtime.fake import FakeRuntime, FakeWorld
from hyperhive.web.dashboard.state import build_state
from scripts.bench_dashboard import fill
from tests.support.postgres import PgCluster
from tests.web.conftest import dash_config


@contextlib.asynccontextmanager
async def filled(backend: str, args: argparse.Namespace) -> AsyncIterator[Hive]:
    config = dash_config().model_copy(
        update={"budgets": Budgets(runaway_messages_per_minute=0, runaway_exchanges_per_minute=0)}
    )
    world = FakeWorld()
    with contextlib.ExitStack() as stack:
        home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hhbs")))
        url = None
        if backend == "postgresql":
            url = stack.enter_context(PgCluster()).new_database()
        async with build_hive(
            HivePaths(home / "h"),
            config,
            database=url,
            runtime_factory=lambda n: FakeRuntime(world),
            crash_interval=3600,
        ) as hive:
            await fill(hive, args.agents, args.messages, args.messages)
            keep = min(args.unread, args.messages)  # the newest stay unread, the rest were read
            p = "%s" if url else "?"
            db: Any = hive.broker.store.db  # type: ignore[attr-defined]
            await db.write(
                lambda conn: conn.execute(
                    "UPDATE messages SET delivered_at = sent_at"
                    f" WHERE id <= (SELECT max(id) FROM messages) - {p}",
                    (keep,),
                )
            )
            print(f"then all but the newest {keep} marked read", flush=True)
            yield hive


def count_reads(hive: Hive) -> Callable[[Callable[[], Awaitable[object]]], Awaitable[int]]:
    """`await measure(fn)` → the database reads and writes `fn` made (the hive's background
    tasks are idle meanwhile: nothing else happens in a benchmark hive)."""
    db: Any = hive.broker.store.db  # type: ignore[attr-defined]
    seen = [0]
    for verb in ("read", "write"):
        orig = getattr(db, verb)

        async def counted(*a: Any, _orig: Any = orig) -> Any:
            seen[0] += 1
            return await _orig(*a)

        setattr(db, verb, counted)

    async def measure(fn: Callable[[], Awaitable[object]]) -> int:
        before = seen[0]
        await fn()
        return seen[0] - before

    return measure


async def run(args: argparse.Namespace) -> None:
    for backend in args.backend or ["sqlite", "postgresql"]:
        async with filled(backend, args) as hive:
            await build_state(hive)  # first sight of each agent (today's budget, read once)
            reads = await count_reads(hive)(lambda: build_state(hive))
            took = []
            for _ in range(args.rounds):
                t = time.perf_counter()
                await build_state(hive)
                took.append((time.perf_counter() - t) * 1000)
            print(
                f"{backend}: /api/state build, {len(hive.registry.names())} agents,"
                f" {args.messages} messages ({min(args.unread, args.messages)} unread):"
                f" {statistics.median(took):.1f} ms median, {max(took):.1f} ms max of"
                f" {args.rounds}; {reads} database reads per build",
                flush=True,
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--agents", type=int, default=100)
    ap.add_argument("--messages", type=int, default=5000)
    ap.add_argument("--unread", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--backend", action="append", choices=["sqlite", "postgresql"])
    asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    main()
