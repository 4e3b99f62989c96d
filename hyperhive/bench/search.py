"""Search benchmark: a real daemon whose database holds N messages and T turn docs, queried
over the host socket (`search`), so a latency is the full request → FTS5 → answer path.

The corpus is synthetic but shaped like a hive's: bodies of 8-40 words drawn from a 5,000-word
vocabulary with Zipf-like frequencies (a few words are in most rows, most words in few), sent
among 20 agents over 30 days; turn docs of 20-200 words. It is written before the daemon starts,
through the same stores (so the index is kept as in production), and on sqlite the write rate
with the index is compared to the same writes with the message triggers dropped. With
`HIVE_DATABASE_URL=postgresql://...` the daemon and the corpus use that database instead.

Query mix (each class run `rounds` times, interleaved): a rare word, a common word, two words,
a quoted phrase, a prefix, a common word filtered by agent, by the last day, and turns only.
"""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import string
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hyperhive.aio import aio_run
from hyperhive.bench.broker import _pct, reference_loop_ms
from hyperhive.bench.daemon import throwaway_daemon
from hyperhive.client.host import HostClient
from hyperhive.clock import iso
from hyperhive.core.records import AgentRecord, NewMessage
from hyperhive.core.store.backend import backend_kind, database_url, open_storage
from hyperhive.core.store.search import TurnDoc
from hyperhive.core.store.sqlite import SqliteMessageStore
from hyperhive.core.store.sqlite_migrations import MIGRATIONS
from hyperhive.db import Database
from hyperhive.paths import HivePaths

AGENTS = [f"agent{i:02d}" for i in range(20)]
VOCAB = 5000
DAYS = 30
BATCH = 500


@dataclass
class SearchResult:
    messages: int
    turns: int
    queries: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    by_class: dict[str, dict[str, float]] = field(default_factory=dict)
    insert_msgs_per_s: float = 0.0  # with the FTS triggers
    insert_msgs_per_s_no_index: float = 0.0  # the same writes, message triggers dropped
    db_mb: float = 0.0
    reference_ms: float = 0.0
    backend: str = "sqlite"  # HIVE_DATABASE_URL picks PostgreSQL (the daemon inherits it)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    def human(self) -> str:
        lines = [
            f"search ({self.backend}): {self.messages:,} messages + {self.turns:,} turn docs, "
            f"{self.queries} queries over the host socket",
            f"  latency  p50 {self.p50_ms:.2f} ms  p90 {self.p90_ms:.2f} ms  "
            f"p99 {self.p99_ms:.2f} ms  max {self.max_ms:.2f} ms",
        ]
        for name, c in self.by_class.items():
            lines.append(
                f"    {name:<14} p50 {c['p50_ms']:7.2f} ms  p99 {c['p99_ms']:7.2f} ms  "
                f"hits {c['hits']:.0f}"
            )
        base = (
            f" vs {self.insert_msgs_per_s_no_index:,.0f} msg/s without the triggers"
            if self.insert_msgs_per_s_no_index
            else ""
        )
        size = f"; database {self.db_mb:.0f} MB" if self.db_mb else ""
        lines.append(
            f"  writes: {self.insert_msgs_per_s:,.0f} msg/s indexed{base} "
            f"(batches of {BATCH}){size}"
        )
        lines.append(f"  machine reference loop {self.reference_ms:.1f} ms (lower = faster now)")
        return "\n".join(lines)


class Corpus:
    def __init__(self, seed: int = 17) -> None:
        self.rng = random.Random(seed)
        letters = string.ascii_lowercase
        words: set[str] = set()
        while len(words) < VOCAB:
            words.add("".join(self.rng.choice(letters) for _ in range(self.rng.randint(4, 9))))
        self.words = sorted(words)
        self.rng.shuffle(self.words)  # rank = position
        self.weights = [1.0 / (r + 1) for r in range(VOCAB)]

    def text(self, lo: int, hi: int) -> str:
        n = self.rng.randint(lo, hi)
        return " ".join(self.rng.choices(self.words, self.weights, k=n))


async def _fill(path: Path, corpus: Corpus, messages: int, turns: int, now: float) -> float:
    """Write the corpus through the stores of the daemon's backend (sqlite at `path`, or the
    `HIVE_DATABASE_URL` database); returns messages per second written."""
    async with open_storage(database_url(None), path) as storage:
        # registered (external runtime: nothing launched), so the daemon's indexer keeps
        # their turn docs (it drops those of agents purged from the hive)
        for name in AGENTS:
            await storage.agents.put_agent(AgentRecord(name, "agent", iso(now)))
        store = storage.messages
        span = DAYS * 86400.0
        t0 = time.perf_counter()
        for start in range(0, messages, BATCH):
            n = min(BATCH, messages - start)
            at = iso(now - span + span * (start + n) / messages)
            batch = [
                NewMessage(corpus.rng.choice(AGENTS), corpus.rng.choice(AGENTS), corpus.text(8, 40))
                for _ in range(n)
            ]
            await store.insert_messages(batch, at)
        rate = messages / (time.perf_counter() - t0)
        search = storage.search
        kinds = ("prompt", "assistant", "tool_use", "tool_result")
        per_agent = max(1, turns // len(AGENTS))
        for a, agent in enumerate(AGENTS):
            docs = []
            for i in range(per_agent):
                ts = iso(now - span + span * (i + 1) / per_agent - a)
                kind = kinds[i % 4]
                docs.append(TurnDoc(agent, i + 1, ts, kind, kind, corpus.text(20, 200)))
            for j in range(0, len(docs), BATCH):
                await search.add_turns(agent, docs[j : j + BATCH], docs[j : j + BATCH][-1].event_id)
        return rate


async def _baseline(path: Path, corpus: Corpus, messages: int, now: float) -> float:
    """The same message writes with the FTS triggers of `messages` dropped."""
    async with Database(path, MIGRATIONS) as db:

        def drop(conn: sqlite3.Connection) -> None:
            for t in ("messages_fts_ai", "messages_fts_ad", "messages_fts_au"):
                conn.execute(f"DROP TRIGGER {t}")

        await db.write(drop)
        store = SqliteMessageStore(db)
        t0 = time.perf_counter()
        for start in range(0, messages, BATCH):
            n = min(BATCH, messages - start)
            batch = [
                NewMessage(corpus.rng.choice(AGENTS), corpus.rng.choice(AGENTS), corpus.text(8, 40))
                for _ in range(n)
            ]
            await store.insert_messages(batch, iso(now))
        return messages / (time.perf_counter() - t0)


def _queries(corpus: Corpus) -> dict[str, list[dict[str, Any]]]:
    w, rng = corpus.words, corpus.rng
    common = w[:10]
    mid = w[50:500]
    rare = w[3000:]

    def phrase() -> str:
        words = corpus.text(8, 8).split()
        return f'"{words[0]} {words[1]}"'

    return {
        "rare word": [{"query": rng.choice(rare)} for _ in range(50)],
        "common word": [{"query": rng.choice(common)} for _ in range(50)],
        "two words": [{"query": f"{rng.choice(mid)} {rng.choice(mid)}"} for _ in range(50)],
        "phrase": [{"query": phrase()} for _ in range(50)],
        "prefix": [{"query": rng.choice(mid)[:3] + "*"} for _ in range(50)],
        "by agent": [{"query": rng.choice(mid), "agent": rng.choice(AGENTS)} for _ in range(50)],
        "last day": [{"query": rng.choice(mid), "since_seconds": 86400} for _ in range(50)],
        "turns only": [{"query": rng.choice(mid), "kinds": ["turn"]} for _ in range(50)],
    }


async def _measure(
    sock: Path, plan: dict[str, list[dict[str, Any]]], rounds: int
) -> tuple[list[float], dict[str, dict[str, float]]]:
    client = HostClient(sock)
    per: dict[str, list[float]] = {k: [] for k in plan}
    hits: dict[str, list[int]] = {k: [] for k in plan}
    await client.call("search", query="warmup")
    for _ in range(rounds):
        for i in range(max(len(v) for v in plan.values())):
            for name, qs in plan.items():
                fields = qs[i % len(qs)]
                t = time.perf_counter()
                answer = await client.call("search", **fields)
                per[name].append((time.perf_counter() - t) * 1000)
                hits[name].append(len(answer["hits"]))
    every = sorted(x for v in per.values() for x in v)
    by_class = {
        name: {
            "p50_ms": _pct(sorted(v), 0.5),
            "p99_ms": _pct(sorted(v), 0.99),
            "hits": sum(hits[name]) / max(1, len(hits[name])),
        }
        for name, v in per.items()
    }
    return every, by_class


def run_search_bench(messages: int, turns: int, rounds: int) -> SearchResult:
    corpus = Corpus()
    now = time.time()
    rates: dict[str, float] = {}

    def prepare(paths: HivePaths) -> None:
        rates["indexed"] = aio_run(_fill(paths.db_file, corpus, messages, turns, now))
        if backend == "sqlite":
            base = paths.home / "baseline.sqlite"
            rates["baseline"] = aio_run(_baseline(base, Corpus(), messages, now))
            for f in paths.home.glob("baseline.sqlite*"):
                f.unlink()

    backend = backend_kind(database_url(None))

    with throwaway_daemon(prepare=prepare) as (paths, _pid):
        db_mb = paths.db_file.stat().st_size / 1e6 if paths.db_file.exists() else 0.0
        every, by_class = asyncio.run(_measure(paths.host_sock, _queries(corpus), rounds))
    return SearchResult(
        messages=messages,
        turns=turns,
        queries=len(every),
        p50_ms=_pct(every, 0.5),
        p90_ms=_pct(every, 0.9),
        p99_ms=_pct(every, 0.99),
        max_ms=every[-1] if every else float("nan"),
        by_class=by_class,
        insert_msgs_per_s=rates["indexed"],
        insert_msgs_per_s_no_index=rates.get("baseline", 0.0),
        backend=backend,
        db_mb=db_mb,
        reference_ms=reference_loop_ms(),
    )
