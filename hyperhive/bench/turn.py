"""Harness overhead per turn: what the hive adds around the Claude Code CLI.

A throwaway hive (real sandbox, real CLI, `hive sim` answering at once) runs N sequential
turns of one agent. Per turn, from the agent's turn stats and the broker:
- wake: message committed → the harness starts the turn (recv wake-up, wake prompt);
- around: the harness's own time in the turn — everything but the CLI process, from the turn's
  start to its stats row (argv/env, event publishing, outcome handling, open-thread and
  reminder counts from the core);
- cli: the CLI process from spawn to exit (reported for scale, not overhead).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from hyperhive.assembly import throwaway_hive
from hyperhive.clock import parse_iso
from hyperhive.config import Defaults, HiveConfig, ModelEndpoint
from hyperhive.harness.stats import read_stats
from hyperhive.paths import HivePaths
from hyperhive.sim import Scenario, SimServer


@dataclass
class TurnBench:
    turns: int
    runtime: str
    wake_ms_p50: float
    around_ms_p50: float
    overhead_ms_p50: float
    overhead_ms_max: float
    cli_ms_p50: float

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    def human(self) -> str:
        return (
            f"harness overhead over {self.turns} turns ({self.runtime} runtime):\n"
            f"  wake (message committed → turn starts)  p50 {self.wake_ms_p50:.1f} ms\n"
            f"  around the CLI (harness time in turn)    p50 {self.around_ms_p50:.1f} ms\n"
            f"  total harness overhead                   p50 {self.overhead_ms_p50:.1f} ms, max {self.overhead_ms_max:.1f} ms\n"
            f"  the CLI itself (spawn → exit)            p50 {self.cli_ms_p50:.0f} ms"
        )


async def _run(turns: int, runtime: str | None) -> TurnBench:
    root = Path(tempfile.mkdtemp(dir="/tmp", prefix="hhbt"))
    try:
        async with SimServer(Scenario.model_validate({"default": {"text": "ok"}})) as sim:
            cfg = HiveConfig(
                defaults=Defaults(runtime=runtime or "auto", network="none"),
                model_endpoint=ModelEndpoint(base_url=f"{sim.base_url}/a/{{agent}}"),
            )
            async with throwaway_hive(HivePaths(root), cfg) as hive:
                try:
                    await hive.spawn("bench")
                    state = hive.paths.state_dir("bench")

                    def done() -> int:
                        return len(read_stats(state, 10_000)[0])

                    async def until(n: int) -> None:
                        deadline = time.monotonic() + 120
                        while done() < n:
                            if time.monotonic() > deadline:
                                raise TimeoutError("bench: the agent did not finish its turn")
                            await asyncio.sleep(0.02)

                    await until(1)  # the kick turn
                    sent: dict[int, float] = {}
                    for i in range(turns):
                        [msg] = await hive.broker.send("operator", "bench", f"turn {i}")
                        sent[i] = parse_iso(msg.sent_at)
                        await until(i + 2)
                    rows = list(reversed(read_stats(state, 10_000)[0]))[1:]
                    rt = hive.registry.require("bench").runtime
                finally:
                    for name in hive.registry.names():
                        await hive.lifecycle.stop_agent(name, graceful=True, timeout=10)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    wake = [(parse_iso(r["started_at"]) - sent[i]) * 1000 for i, r in enumerate(rows)]
    around = [r["harness_ms"] for r in rows]
    total = [w + a for w, a in zip(wake, around, strict=True)]
    return TurnBench(
        turns=len(rows),
        runtime=rt,
        wake_ms_p50=statistics.median(wake),
        around_ms_p50=statistics.median(around),
        overhead_ms_p50=statistics.median(total),
        overhead_ms_max=max(total),
        cli_ms_p50=statistics.median(r["cli_ms"] for r in rows),
    )


def run_turn_bench(turns: int, runtime: str | None) -> TurnBench:
    from hyperhive.aio import aio_run

    return aio_run(_run(turns, runtime))
