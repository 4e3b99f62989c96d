"""Budgets and metrics benchmark: what metering costs, against a real daemon process.

N agents each report M turns (`report_turn` over their sockets, one agent after the other so
the figure is one report's own path: validate, store the usage row, sum the agent's rolling
hour and day and the hive's day, check the limits); then `/metrics` is scraped K times over
HTTP (status rows, budgets, process figures, rendering). Limits are set (so every report is
checked against real numbers) but high enough never to trip.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import asdict, dataclass

import httpx

from hyperhive.aio import aio_run
from hyperhive.bench.daemon import throwaway_daemon
from hyperhive.client.agent import NO_RETRY, AgentClient
from hyperhive.client.host import HostClient
from hyperhive.paths import HivePaths

CONFIG = """[defaults]
runtime = "external"
[budgets]
hive_cost_usd_per_day = 1000000
[budgets.defaults]
tokens_per_day = 1000000000
cost_usd_per_day = 1000000
turns_per_hour = 1000000
"""


@dataclass
class BudgetsResult:
    agents: int
    reports: int
    report_p50_ms: float
    report_p99_ms: float
    scrapes: int
    scrape_p50_ms: float
    scrape_p99_ms: float
    metrics_bytes: int

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    def human(self) -> str:
        return (
            f"budgets: {self.agents} agents, {self.reports} report_turn calls\n"
            f"  report_turn (store + check)  p50 {self.report_p50_ms:.2f} ms  "
            f"p99 {self.report_p99_ms:.2f} ms\n"
            f"  /metrics scrape ({self.scrapes}x, {self.metrics_bytes:,} bytes)  "
            f"p50 {self.scrape_p50_ms:.1f} ms  p99 {self.scrape_p99_ms:.1f} ms"
        )


def _pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


async def _run(paths: HivePaths, agents: int, turns: int, scrapes: int) -> BudgetsResult:
    host = HostClient(paths.host_sock)
    names = [f"b{i:03d}" for i in range(agents)]
    for n in names:
        await host.call("spawn", name=n)
    report_ms: list[float] = []
    for n in names:
        async with AgentClient(paths.agent_sock(n), retry=NO_RETRY) as c:
            for _ in range(turns):
                t0 = time.perf_counter()
                await c.call(
                    "report_turn",
                    model="haiku",
                    duration_ms=1000,
                    input_tokens=1000,
                    output_tokens=100,
                    cost_usd=0.01,
                    tool_calls={"Bash": 1, "mcp__hyperhive__send": 1},
                )
                report_ms.append((time.perf_counter() - t0) * 1000)
    url = (await host.call("urls"))["urls"]["dashboard"]
    scrape_ms: list[float] = []
    size = 0
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        for _ in range(scrapes):
            t0 = time.perf_counter()
            r = await http.get("/metrics")
            scrape_ms.append((time.perf_counter() - t0) * 1000)
            r.raise_for_status()
            size = len(r.content)
    return BudgetsResult(
        agents=agents,
        reports=len(report_ms),
        report_p50_ms=statistics.median(report_ms),
        report_p99_ms=_pct(report_ms, 0.99),
        scrapes=scrapes,
        scrape_p50_ms=statistics.median(scrape_ms),
        scrape_p99_ms=_pct(scrape_ms, 0.99),
        metrics_bytes=size,
    )


def run_budgets_bench(agents: int, turns: int, scrapes: int) -> BudgetsResult:
    with throwaway_daemon(config=CONFIG) as (paths, _pid):
        return aio_run(_run(paths, agents, turns, scrapes))
