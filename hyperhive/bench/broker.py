"""Broker benchmark: real daemon process, real clients over unix sockets.

Each of N agents parks in `recv(wait_seconds=180, max=32)`; senders (agent connections) send M
messages round-robin, paced at R msg/s or as fast as they can. Latency is measured from just
before the send request is written to the moment the recipient's recv returns the message
(same process, `perf_counter`), so it is the full send → store → wake → recv path.

`--db URL` (`run_broker_compare`): the same load on the sqlite default and then on that
PostgreSQL database (in a scratch schema, `bench/scratchdb.py`), one result per backend, so
the figures sit side by side from one run on one machine state. A multi-node variant adds
its own runs to the list (`BrokerResult.backend` / `.nodes` name them).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from dataclasses import asdict, dataclass

from hyperhive.aio import aio_run
from hyperhive.bench.daemon import cpu_seconds, throwaway_daemon
from hyperhive.client.agent import NO_RETRY, AgentClient
from hyperhive.client.host import HostClient
from hyperhive.db import wal_size
from hyperhive.paths import HivePaths

# the benchmark floods on purpose: the runaway guard (docs/operations.md) would pause senders
FLOOD_CONFIG = """[defaults]
runtime = "external"
[budgets]
runaway_messages_per_minute = 0
runaway_exchanges_per_minute = 0
"""


@dataclass
class BrokerResult:
    backend: str
    agents: int
    messages: int
    rate: float | None
    received: int
    seconds: float
    throughput: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    daemon_cpu_us_per_msg: float  # the daemon's CPU time over the run / messages delivered
    reference_ms: float  # a fixed pure-Python loop on this machine now (the VM's speed varies)
    wal_peak_mb: float = 0.0  # the daemon's hive.sqlite-wal, largest seen during the run
    wal_end_mb: float = 0.0  # ... once the run is over (the daemon still up, idle)
    nodes: int = 1  # daemons sharing the database

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    def human(self) -> str:
        pace = f"paced at {self.rate:g} msg/s" if self.rate else "unpaced"
        return (
            f"broker on {self.backend} ({self.nodes} node(s)): {self.agents} agents, "
            f"{self.messages} messages, {pace}\n"
            f"  delivered {self.received}/{self.messages} in {self.seconds:.2f} s "
            f"= {self.throughput:,.0f} msg/s\n"
            f"  send→recv latency  p50 {self.p50_ms:.3f} ms  p90 {self.p90_ms:.3f} ms  "
            f"p99 {self.p99_ms:.3f} ms  max {self.max_ms:.3f} ms\n"
            f"  daemon CPU per message {self.daemon_cpu_us_per_msg:.0f} µs; "
            f"machine reference loop {self.reference_ms:.1f} ms (lower = faster right now)"
            + (
                f"\n  hive.sqlite-wal  peak {self.wal_peak_mb:.1f} MB during the run, "
                f"{self.wal_end_mb:.1f} MB after it (idle)"
                if self.backend == "sqlite"
                else ""
            )
        )


def _pct(sorted_ms: list[float], q: float) -> float:
    if not sorted_ms:
        return float("nan")
    i = min(len(sorted_ms) - 1, max(0, round(q * (len(sorted_ms) - 1))))
    return sorted_ms[i]


def reference_loop_ms(runs: int = 5) -> float:
    """Median time of a fixed pure-Python loop: how fast this (virtual) machine runs Python
    right now, so runs taken at different times can be compared."""
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        total = 0
        for i in range(1_000_000):
            total += i & 7
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


async def _run(
    paths: HivePaths,
    pid: int,
    agents: int,
    messages: int,
    rate: float | None,
    senders: int,
    backend: str = "sqlite",
) -> BrokerResult:
    host = HostClient(paths.host_sock)
    names = [f"b{i}" for i in range(agents)]
    for n in names:
        await host.call("spawn", name=n)
    sent_at: dict[str, float] = {}
    latencies: list[float] = []
    done = asyncio.Event()

    async def receiver(name: str) -> None:
        async with AgentClient(paths.agent_sock(name), retry=NO_RETRY) as c:
            while not done.is_set():
                got = await c.call("recv", wait_seconds=180, max=32)
                now = time.perf_counter()
                for m in got["messages"]:
                    t = sent_at.get(m["body"])
                    if t is not None:
                        latencies.append((now - t) * 1000)
                if len(latencies) >= messages:
                    done.set()

    wal_peak = 0

    async def watch_wal() -> None:
        nonlocal wal_peak
        while True:
            wal_peak = max(wal_peak, wal_size(paths.db_file))
            await asyncio.sleep(0.05)

    receivers = [asyncio.create_task(receiver(n)) for n in names]
    watcher = asyncio.create_task(watch_wal(), name="bench-wal")
    await asyncio.sleep(0.2)  # let every receiver park before the clock starts
    cpu0 = cpu_seconds(pid)
    start = time.perf_counter()

    async def sender(idx: int) -> None:
        me = f"s{idx}"
        async with AgentClient(paths.agent_sock(names[idx % agents]), retry=NO_RETRY) as c:
            for k in range(idx, messages, senders):
                if rate:
                    target = start + k / rate
                    delay = target - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                body = f"{me}:{k}"
                to = names[(k + 1) % agents]
                sent_at[body] = time.perf_counter()
                await c.call("send", to=to, body=body)

    await asyncio.gather(*(sender(i) for i in range(senders)))
    try:
        await asyncio.wait_for(done.wait(), 60)
    except TimeoutError:
        pass
    seconds = time.perf_counter() - start
    cpu = cpu_seconds(pid) - cpu0
    for t in [*receivers, watcher]:
        t.cancel()
    await asyncio.gather(*receivers, watcher, return_exceptions=True)
    wal_peak = max(wal_peak, wal_size(paths.db_file))
    wal_end = await _settled_wal(paths)
    lat = sorted(latencies)
    return BrokerResult(
        backend=backend,
        agents=agents,
        messages=messages,
        rate=rate,
        received=len(lat),
        seconds=seconds,
        throughput=len(lat) / seconds if seconds else 0.0,
        p50_ms=statistics.median(lat) if lat else float("nan"),
        p90_ms=_pct(lat, 0.90),
        p99_ms=_pct(lat, 0.99),
        max_ms=lat[-1] if lat else float("nan"),
        daemon_cpu_us_per_msg=cpu / len(lat) * 1e6 if lat else float("nan"),
        reference_ms=reference_loop_ms(),
        wal_peak_mb=wal_peak / 1e6,
        wal_end_mb=wal_end / 1e6,
    )


async def _settled_wal(paths: HivePaths, timeout: float = 15.0) -> int:
    """The WAL's size once the idle daemon has had its checkpoint ticks (a few seconds)."""
    deadline = time.monotonic() + timeout
    size = wal_size(paths.db_file)
    while size and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        size = wal_size(paths.db_file)
    return size


def run_broker_bench(
    agents: int, messages: int, rate: float | None, senders: int, db: str | None = None
) -> BrokerResult:
    """One run on a throwaway daemon: the sqlite default, or the database at `db` (which
    must hold no hive yet)."""
    env = {"HIVE_DATABASE_URL": db} if db else {"HIVE_DATABASE_URL": ""}
    backend = "postgresql" if db else "sqlite"
    with throwaway_daemon(env, config=FLOOD_CONFIG) as (paths, pid):
        return aio_run(_run(paths, pid, agents, messages, rate, senders, backend))


def run_broker_compare(
    agents: int, messages: int, rate: float | None, senders: int, db: str
) -> list[BrokerResult]:
    """The same load on sqlite, then on PostgreSQL at `db` (in a scratch schema)."""
    from hyperhive.bench.scratchdb import scratch_schema

    results = [run_broker_bench(agents, messages, rate, senders)]
    with scratch_schema(db) as url:
        results.append(run_broker_bench(agents, messages, rate, senders, url))
    return results
