"""`hive bench hop`: how long a message takes to cross one agent, cold and warm.

A throwaway hive of sandboxed agents (bwrap where it works) and `hive sim` answering at once;
the operator sends alice a message, alice's model sends it on to bob, bob's back to the
operator; repeated `rounds` times, once with `warm_seconds = 0` (a `claude` process per turn)
and once warm. Per hop (alice, bob), from the hive's own clock:
- to turn: the message committed → the harness starts its turn (its stats row's start);
- to model: the message committed → the agent's next model request arrives at the sim;
- to reply: the message committed → the agent's own message committed.
Then the memory of each agent's sandbox (RSS summed over its processes), idle after its
turns: warm (the harness + its `claude` + the MCP server) and cold (the harness alone).

Each round starts once both agents' previous turns are recorded, so a hop never queues behind
the last round's turn. The manager is paused: nothing else competes.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from hyperhive.clock import parse_iso
from hyperhive.errors import Unavailable
from hyperhive.harness.stats import read_stats

AGENTS = ("alice", "bob")
TARGET_WARM_HOP_MS = 150.0
TARGET_COLD_RSS_MB = 40.0
WAIT = 180.0  # seconds: a guard against a hang, not a measurement


def _send(to: str, body: str) -> dict[str, Any]:
    return {"type": "tool_use", "name": "mcp__hyperhive__send", "input": {"to": to, "body": body}}


SCENARIO: dict[str, Any] = {
    "default": {"text": "ok"},
    "rules": [
        {
            "id": "alice-send",
            "agent": "alice",
            "when_user_contains": "from operator",
            "reply": [_send("bob", "relay")],
        },
        {
            "id": "bob-send",
            "agent": "bob",
            "when_user_contains": "from alice",
            "reply": [_send("operator", "back")],
        },
        {"id": "sent", "when_tool_result_for": "mcp__hyperhive__send", "text": "done"},
    ],
}


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclass
class ModeResult:
    warm_seconds: float
    runtime: str
    to_turn_ms: list[float] = field(default_factory=list)  # committed → the harness's turn
    to_model_ms: list[float] = field(default_factory=list)
    to_reply_ms: list[float] = field(default_factory=list)
    rss_mb: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, float]:
        return {
            "to_turn_p50": statistics.median(self.to_turn_ms),
            "to_model_p50": statistics.median(self.to_model_ms),
            "to_model_p99": _pct(self.to_model_ms, 0.99),
            "to_reply_p50": statistics.median(self.to_reply_ms),
            "to_reply_p99": _pct(self.to_reply_ms, 0.99),
        }


@dataclass
class HopBench:
    rounds: int
    cpus: int
    load_before: tuple[float, float, float]
    cold: ModeResult
    warm: ModeResult

    def to_json(self) -> str:
        body = asdict(self)
        body["cold"]["summary"] = self.cold.summary()
        body["warm"]["summary"] = self.warm.summary()
        body["targets"] = {"warm_hop_p50_ms": TARGET_WARM_HOP_MS, "cold_rss_mb": TARGET_COLD_RSS_MB}
        return json.dumps(body)

    def human(self) -> str:
        lines = [
            f"hop latency over {self.rounds} rounds operator → alice → bob → operator "
            f"({self.cold.runtime} runtime, {self.cpus} cpus, load {self.load_before[0]:.1f}):"
        ]
        for name, mode in (("cold", self.cold), ("warm", self.warm)):
            s = mode.summary()
            rss = ", ".join(f"{a} {mb:.1f} MB" for a, mb in mode.rss_mb.items())
            lines += [
                f"  {name} (warm_seconds={mode.warm_seconds:g}), {len(mode.to_reply_ms)} hops:",
                f"    committed → turn starts     p50 {s['to_turn_p50']:7.0f} ms",
                f"    committed → model request   p50 {s['to_model_p50']:7.0f} ms  "
                f"p99 {s['to_model_p99']:7.0f} ms",
                f"    committed → reply committed p50 {s['to_reply_p50']:7.0f} ms  "
                f"p99 {s['to_reply_p99']:7.0f} ms",
                f"    idle RSS per agent: {rss}",
            ]
        warm = self.warm.summary()["to_reply_p50"]
        cold_rss = max(self.cold.rss_mb.values(), default=0.0)
        lines.append(
            f"  targets: warm hop p50 ≤ {TARGET_WARM_HOP_MS:g} ms: "
            f"{'met' if warm <= TARGET_WARM_HOP_MS else 'NOT met'}; cold idle RSS ≤ "
            f"{TARGET_COLD_RSS_MB:g} MB: {'met' if cold_rss <= TARGET_COLD_RSS_MB else 'NOT met'}"
        )
        return "\n".join(lines)


async def _until(check: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + WAIT
    while not (value := check()):
        if time.monotonic() > deadline:
            raise Unavailable(f"bench hop: timed out after {WAIT:g} s waiting for {what}")
        await asyncio.sleep(0.01)
    return value


async def _mode(
    warm_seconds: float, rounds: int, runtime: str | None, progress: Callable[[str], None]
) -> ModeResult:
    from hyperhive.assembly import throwaway_hive
    from hyperhive.bench.spawn import memory_of, sandbox_pids
    from hyperhive.config import Defaults, HiveConfig, ModelEndpoint
    from hyperhive.core.events import HiveEvent
    from hyperhive.paths import HivePaths
    from hyperhive.sim import Scenario, SimServer

    root = Path(tempfile.mkdtemp(dir="/tmp", prefix="hhbh"))
    try:
        async with SimServer(Scenario.model_validate(SCENARIO)) as sim:
            cfg = HiveConfig(
                defaults=Defaults(
                    runtime=runtime or "auto", network="none", warm_seconds=warm_seconds
                ),
                model_endpoint=ModelEndpoint(base_url=f"{sim.base_url}/a/{{agent}}"),
            )
            async with throwaway_hive(HivePaths(root / "h"), cfg) as hive:
                commits: list[tuple[str, str, float]] = []  # sender, recipient, when

                def listen(ev: HiveEvent) -> None:
                    if ev.kind == "message_sent":
                        commits.append((str(ev.data["sender"]), str(ev.data["to"]), time.time()))

                requests: list[tuple[str, float]] = []  # agent, when

                async def watch_sim() -> None:
                    after = sim.seen
                    while True:
                        req = await sim.wait_for_request(
                            lambda r: r.kind == "main", timeout=3600, after=after
                        )
                        requests.append((req.agent or "", time.time()))
                        after = req.seq + 1

                def turns(name: str) -> int:
                    return len(read_stats(hive.paths.state_dir(name), 10_000)[0])

                def turned(name: str, count: int) -> bool:
                    return turns(name) > count

                def back_home(mark: int) -> bool:
                    return any(s == "bob" and t == "operator" for s, t, _ in commits[mark:])

                hive.hub.add_listener(listen)
                watcher = asyncio.create_task(watch_sim(), name="bench-hop-sim-watch")
                result = ModeResult(warm_seconds, "?")
                try:
                    manager = hive.config.manager.name
                    await hive.registry.update(manager, paused=True)
                    for name in AGENTS:
                        await hive.spawn(name)
                    for name in AGENTS:
                        await _until(partial(turned, name, 0), f"{name}'s kick turn")
                    result.runtime = hive.registry.require("alice").runtime
                    progress(f"warm_seconds={warm_seconds:g}: agents up ({result.runtime})")
                    for i in range(rounds):
                        done = {n: turns(n) for n in AGENTS}
                        mark_c, mark_r = len(commits), len(requests)
                        await hive.broker.send("operator", "alice", f"round {i}")
                        await _until(partial(back_home, mark_c), "the message back home")
                        for n in AGENTS:
                            await _until(partial(turned, n, done[n]), f"{n}'s turn")
                        _hop_times(commits[mark_c:], requests[mark_r:], result)
                        for n, sender in (("alice", "operator"), ("bob", "alice")):
                            row = read_stats(hive.paths.state_dir(n), 1)[0][0]
                            got = next(t for s, r, t in commits[mark_c:] if s == sender and r == n)
                            result.to_turn_ms.append((parse_iso(row["started_at"]) - got) * 1000)
                    for name in AGENTS:
                        pids = sandbox_pids(hive.paths.logs_dir(name))
                        result.rss_mb[name] = round(memory_of(pids)[0], 1)
                    progress(f"warm_seconds={warm_seconds:g}: done")
                finally:
                    watcher.cancel()
                    await asyncio.gather(watcher, return_exceptions=True)
                    for name in hive.registry.names():
                        try:
                            await hive.lifecycle.kill_agent(name)
                        except Exception as exc:
                            progress(f"could not kill {name}: {exc}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return result


def _hop_times(
    commits: list[tuple[str, str, float]], requests: list[tuple[str, float]], out: ModeResult
) -> None:
    """One round's two hops: (operator→alice, alice's request, alice→bob) and (alice→bob,
    bob's request, bob→operator)."""
    for sender, agent, onward in (("operator", "alice", "bob"), ("alice", "bob", "operator")):
        got = next(t for s, r, t in commits if s == sender and r == agent)
        req = next(t for a, t in requests if a == agent and t >= got)
        sent = next(t for s, r, t in commits if s == agent and r == onward)
        out.to_model_ms.append((req - got) * 1000)
        out.to_reply_ms.append((sent - got) * 1000)


async def hop_bench(
    rounds: int, runtime: str | None = None, progress: Callable[[str], None] = print
) -> HopBench:
    """Both modes, cold first (see the module's doc)."""
    load = os.getloadavg()
    cold = await _mode(0, rounds, runtime, progress)
    warm = await _mode(600, rounds, runtime, progress)
    return HopBench(rounds, os.cpu_count() or 0, load, cold, warm)


def run_hop_bench(
    rounds: int, runtime: str | None = None, progress: Callable[[str], None] | None = None
) -> HopBench:
    from hyperhive.aio import aio_run

    return aio_run(hop_bench(rounds, runtime, progress or (lambda _msg: None)))
