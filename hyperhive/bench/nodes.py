"""Broker benchmark across nodes (`hive bench broker --nodes N --db URL`): N real `hive serve`
processes with their own homes on one PostgreSQL database, agents spread over them round-robin
(`spawn --node`), each agent's client on its own node's socket.

Message k goes from agent k mod A to agent k+1 mod A, which with round-robin placement (N > 1)
is always on another node: every send crosses nodes (commit on node X, NOTIFY, wake on node Y).
Latency is from just before the send is written to the moment the recipient's recv returns it
(one process, `perf_counter`), as in `bench/broker.py`.

Then a node is lost: 20 messages are sent to an agent of the last node, its client receives
them (leased, never acknowledged) and the node is killed with SIGKILL. Measured: seconds from
the kill until node 0 shows that agent `node_lost` with all 20 unread again (delivery is
written only on ack, so nothing was lost; "seen" waits for the heartbeat bound).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from hyperhive.aio import aio_run
from hyperhive.bench.broker import _pct, reference_loop_ms
from hyperhive.bench.daemon import _answers, cpu_seconds
from hyperhive.client.agent import NO_RETRY, AgentClient
from hyperhive.client.host import HostClient
from hyperhive.config import FREE_PORT_LISTEN
from hyperhive.paths import HivePaths

KILL_MESSAGES = 20
# the benchmark floods on purpose: the runaway guard (docs/operations.md) would pause senders
CONFIG = (
    '[defaults]\nruntime = "external"\n[node]\nheartbeat_seconds = 2.0\nlost_after_seconds = 10.0\n'
    "[budgets]\nrunaway_messages_per_minute = 0\nrunaway_exchanges_per_minute = 0\n"
)


@dataclass
class NodesResult:
    nodes: int
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
    cpu_us_per_msg: float  # every node's CPU time over the run / messages delivered
    reference_ms: float
    lost_seen_s: float | None = None  # kill → node_lost with the leased messages unread again
    lost_unread: int | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    def human(self) -> str:
        pace = f"paced at {self.rate:g} msg/s" if self.rate else "unpaced"
        out = (
            f"broker across {self.nodes} node(s) on PostgreSQL: {self.agents} agents, "
            f"{self.messages} messages, {pace}\n"
            f"  delivered {self.received}/{self.messages} in {self.seconds:.2f} s "
            f"= {self.throughput:,.0f} msg/s\n"
            f"  send→recv latency  p50 {self.p50_ms:.3f} ms  p90 {self.p90_ms:.3f} ms  "
            f"p99 {self.p99_ms:.3f} ms  max {self.max_ms:.3f} ms\n"
            f"  nodes' CPU per message {self.cpu_us_per_msg:.0f} µs; "
            f"machine reference loop {self.reference_ms:.1f} ms"
        )
        if self.lost_seen_s is not None:
            out += (
                f"\n  node killed → seen lost with {self.lost_unread}/{KILL_MESSAGES} leased "
                f"messages unread again after {self.lost_seen_s:.1f} s"
            )
        return out


class Node:
    def __init__(self, root: Path, name: str, url: str) -> None:
        self.name = name
        self.paths = HivePaths(root / name)
        self.paths.home.mkdir(parents=True)
        self.paths.config_file.write_text(CONFIG)
        self.log = open(root / f"{name}.log", "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hyperhive.cli", "serve", "--db", url, "--node", name],
            env={
                **os.environ,
                "HIVE_HOME": str(self.paths.home),
                "HIVE_DASHBOARD": FREE_PORT_LISTEN,
            },
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait_up(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not (self.paths.host_sock.exists() and _answers(self.paths.host_sock)):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.log.flush()
                raise RuntimeError(f"node {self.name} did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@contextlib.contextmanager
def throwaway_nodes(url: str, n: int) -> Iterator[list[Node]]:
    root = Path(tempfile.mkdtemp(dir="/tmp", prefix="hhn"))
    nodes: list[Node] = []
    try:
        for i in range(n):  # one at a time: the first one creates the schema
            node = Node(root, f"n{i}", url)
            nodes.append(node)
            node.wait_up()
        yield nodes
    finally:
        for node in nodes:
            node.stop()
        shutil.rmtree(root, ignore_errors=True)


async def _until(pred: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await pred():  # type: ignore[operator]
            return True
        await asyncio.sleep(0.05)
    return False


async def _run(
    nodes: list[Node], agents: int, messages: int, rate: float | None, senders: int, kill: bool
) -> NodesResult:
    first = HostClient(nodes[0].paths.host_sock)

    async def peers_up() -> bool:
        rows = (await first.call("nodes"))["nodes"]
        return sum(1 for r in rows if r["live"] and r.get("peer_url")) == len(nodes)

    await _until(peers_up, 60)
    names = [f"b{i}" for i in range(agents)]
    home = {n: nodes[i % len(nodes)] for i, n in enumerate(names)}
    for n in names:
        await first.call("spawn", name=n, node=home[n].name)

    async def all_known() -> bool:
        for node in nodes:
            listed = set((await HostClient(node.paths.host_sock).call("list"))["agents"])
            if not set(names) <= listed:
                return False
        return True

    await _until(all_known, 60)
    sent_at: dict[str, float] = {}
    latencies: list[float] = []
    done = asyncio.Event()

    async def receiver(name: str) -> None:
        async with AgentClient(home[name].paths.agent_sock(name), retry=NO_RETRY) as c:
            while not done.is_set():
                got = await c.call("recv", wait_seconds=180, max=32)
                now = time.perf_counter()
                for m in got["messages"]:
                    t = sent_at.get(m["body"])
                    if t is not None:
                        latencies.append((now - t) * 1000)
                if len(latencies) >= messages:
                    done.set()

    receivers = [asyncio.create_task(receiver(n)) for n in names]
    await asyncio.sleep(0.5)  # let every receiver park before the clock starts
    cpu0 = sum(cpu_seconds(n.proc.pid) for n in nodes)
    start = time.perf_counter()

    async def sender(idx: int) -> None:
        me = names[idx % agents]
        async with AgentClient(home[me].paths.agent_sock(me), retry=NO_RETRY) as c:
            for k in range(idx, messages, senders):
                if rate:
                    delay = start + k / rate - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                body = f"{idx}:{k}"
                sent_at[body] = time.perf_counter()
                await c.call("send", to=names[(k + 1) % agents], body=body)

    await asyncio.gather(*(sender(i) for i in range(senders)))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done.wait(), 120)
    seconds = time.perf_counter() - start
    cpu = sum(cpu_seconds(n.proc.pid) for n in nodes) - cpu0
    done.set()
    for t in receivers:
        t.cancel()
    await asyncio.gather(*receivers, return_exceptions=True)
    lat = sorted(latencies)
    result = NodesResult(
        nodes=len(nodes),
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
        cpu_us_per_msg=cpu / len(lat) * 1e6 if lat else float("nan"),
        reference_ms=reference_loop_ms(),
    )
    if kill and len(nodes) > 1:
        result.lost_seen_s, result.lost_unread = await _kill_one(nodes, home, first)
    return result


async def _kill_one(
    nodes: list[Node], home: dict[str, Node], first: HostClient
) -> tuple[float | None, int]:
    victim = nodes[-1]
    agent = next(n for n, node in home.items() if node is victim)
    for i in range(KILL_MESSAGES):
        await first.call("send", to=agent, body=f"lease {i}")
    held = 0
    async with AgentClient(victim.paths.agent_sock(agent), retry=NO_RETRY) as c:
        while held < KILL_MESSAGES:
            got = await c.call("recv", wait_seconds=10, max=KILL_MESSAGES)
            if not got["messages"]:
                break
            held += len(got["messages"])
        victim.proc.send_signal(signal.SIGKILL)  # leased, never acknowledged
        killed = time.perf_counter()
        victim.proc.wait()
    unread = 0

    async def seen() -> bool:
        nonlocal unread
        rows = (await first.call("agent_status"))["agent_statuses"]
        row = next(r for r in rows if r["name"] == agent)
        unread = int(row.get("unread") or 0)
        return bool(row.get("state") == "node_lost" and unread >= held)

    ok = await _until(seen, 60)
    return (time.perf_counter() - killed if ok else None), unread


def run_nodes_bench(
    url: str, nodes: int, agents: int, messages: int, rate: float | None, senders: int
) -> NodesResult:
    with throwaway_nodes(url, nodes) as procs:
        return aio_run(_run(procs, agents, messages, rate, senders, kill=True))
