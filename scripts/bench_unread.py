"""Unread counts with a backlog (issue #18): every status row counts its agent's unread mail, so
a dashboard refresh of 100 agents runs 100 counts. `--agents` agents with `--messages` unread
messages spread over them, on sqlite and on PostgreSQL (a throwaway cluster of Debian's
PostgreSQL 15, `tests.support.postgres.PgCluster`): the time of the 100 counts in one
`count_undelivered_many` (how a refresh asks since), one `count_undelivered` per agent (how it
asked before), and per agent in the older shape (the generation checked per row with a
correlated subquery). Not a test: figures go to docs/benchmarks.md.

    .venv/bin/python scripts/bench_unread.py [--agents 100] [--messages 100000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hyperhive.core.store.pg.db import PgDb
from hyperhive.core.store.pg.messages import PgMessageStore
from hyperhive.core.store.sqlite import SqliteMessageStore
from hyperhive.core.store.sqlite_migrations import MIGRATIONS
from hyperhive.db import Database
from tests.support.postgres import PgCluster

T0 = "2026-01-01T00:00:00.000000Z"
BEFORE = (
    "SELECT count(*) FROM messages WHERE recipient = {p} AND delivered_at IS NULL"
    " AND recipient_generation = COALESCE("
    "(SELECT generation FROM agents WHERE agents.name = messages.recipient), 0)"
)


def names(n: int) -> list[str]:
    return [f"agent-{i:03d}" for i in range(n)]


async def timed(fn: object, rounds: int) -> float:
    out = []
    for _ in range(rounds):
        t = time.perf_counter()
        await fn()  # type: ignore[operator]
        out.append((time.perf_counter() - t) * 1000)
    return statistics.median(out)


async def on_sqlite(agents: int, messages: int, rounds: int) -> tuple[float, float, float]:
    with tempfile.TemporaryDirectory(prefix="hhbu") as tmp:
        async with Database(Path(tmp) / "hive.sqlite", MIGRATIONS) as db:
            who = names(agents)

            def fill(conn: object) -> None:
                c = conn  # sqlite3.Connection
                c.executemany(  # type: ignore[attr-defined]
                    "INSERT INTO agents(name, kind, created_at, generation) VALUES (?, 'agent', ?, 1)",
                    [(n, T0) for n in who],
                )
                c.executemany(  # type: ignore[attr-defined]
                    "INSERT INTO messages(sender, recipient, body, sent_at, recipient_generation)"
                    " VALUES ('operator', ?, ?, ?, 1)",
                    [(who[i % agents], "x" * 80, T0) for i in range(messages)],
                )

            await db.write(fill)
            store = SqliteMessageStore(db)

            async def per_agent() -> None:
                for n in who:
                    await store.count_undelivered(n)

            async def grouped() -> None:
                await store.count_undelivered_many(who)

            async def before() -> None:
                for n in who:
                    await db.read(lambda c, n=n: c.execute(BEFORE.format(p="?"), (n,)).fetchone())

            return (
                await timed(before, rounds),
                await timed(per_agent, rounds),
                await timed(grouped, rounds),
            )


async def on_postgres(agents: int, messages: int, rounds: int) -> tuple[float, float, float]:
    with PgCluster() as cluster:
        pg = PgDb(cluster.new_database())
        await pg.open()
        try:
            who = names(agents)

            async def fill(conn: object) -> None:
                await conn.execute(  # type: ignore[attr-defined]
                    "INSERT INTO agents(name, kind, created_at, generation)"
                    " SELECT 'agent-' || lpad(i::text, 3, '0'), 'agent', %s, 1"
                    " FROM generate_series(0, %s) AS i",
                    (T0, agents - 1),
                )
                await conn.execute(  # type: ignore[attr-defined]
                    "INSERT INTO messages(sender, recipient, body, sent_at, recipient_generation)"
                    " SELECT 'operator', 'agent-' || lpad((i %% %s)::text, 3, '0'), repeat('x', 80),"
                    " %s, 1 FROM generate_series(0, %s) AS i",
                    (agents, T0, messages - 1),
                )
                await conn.execute("ANALYZE messages")  # type: ignore[attr-defined]

            await pg.write(fill)
            store = PgMessageStore(pg)

            async def per_agent() -> None:
                for n in who:
                    await store.count_undelivered(n)

            async def grouped() -> None:
                await store.count_undelivered_many(who)

            async def before() -> None:
                for n in who:

                    async def q(conn: object, n: str = n) -> None:
                        cur = await conn.execute(BEFORE.format(p="%s"), (n,))  # type: ignore[attr-defined]
                        await cur.fetchone()

                    await pg.read(q)

            return (
                await timed(before, rounds),
                await timed(per_agent, rounds),
                await timed(grouped, rounds),
            )
        finally:
            await pg.aclose()


async def run(args: argparse.Namespace) -> None:
    for backend, fn in (("sqlite", on_sqlite), ("postgresql", on_postgres)):
        before, per_agent, grouped = await fn(args.agents, args.messages, args.rounds)
        print(
            f"{backend}: {args.agents} unread counts over {args.messages} unread messages: "
            f"{grouped:.1f} ms in one read (one per agent: {per_agent:.1f} ms; per agent with"
            f" the generation checked per row: {before:.1f} ms), median of {args.rounds}",
            flush=True,
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--agents", type=int, default=100)
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=5)
    asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    main()
