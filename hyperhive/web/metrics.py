"""`/metrics`: the hive in Prometheus' text format (`prometheus-client`), served on the
dashboard's listener behind the same guard as its API (off loopback: the operator token).

What is exported, all prefixed `hyperhive_`:
- counted from hub events as they happen: `messages_sent_total{agent}` (by sender),
  `messages_delivered_total{agent}` (by recipient), `turns_total{agent,result}`,
  `turn_duration_seconds{agent}` (histogram), `tokens_total{agent,model,kind}`,
  `cost_usd_total{agent,model}`, `tool_calls_total{tool}` (the last four from the harness's
  `report_turn`), `agent_crashes_total{agent}`; and from the broker:
  `recv_wake_latency_seconds{agent}` (histogram: a message's send to the parked recv that takes
  it);
- read at scrape time: `messages_pending{agent}`, `agent_state{agent,state}` (1 for the
  current one), `questions_open`, `approvals_open`, `budget_used_ratio{agent,limit}`,
  `budget_tripped{agent}`, `hive_cost_usd_today`, `agent_memory_bytes{agent}` and
  `agent_cpu_seconds_total{agent}` (the agent's cgroup, where the runtime can tell), and the
  core's own `process_*` (RSS, CPU, fds).

Invariants: one `CollectorRegistry` per hive (never the global default, so two hives in one
process never mix); label values an agent chooses (tool and model names) are capped at
`MAX_LABELS` distinct values per metric, the rest count as `other`, so a hostile agent cannot
grow the page without bound; a scrape never changes the hive.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

from hyperhive.core.events import HiveEvent
from hyperhive.core.status import status_rows

if TYPE_CHECKING:
    from hyperhive.core.hive import Hive

logger = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST
MAX_LABELS = 200
OTHER = "other"
TURN_BUCKETS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600)
WAKE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60)


class _Capped:
    """Distinct label values, at most `MAX_LABELS`; the rest are `other`."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def __call__(self, value: object) -> str:
        v = str(value or "")[:100] or "unknown"
        if v in self.seen:
            return v
        if len(self.seen) >= MAX_LABELS:
            return OTHER
        self.seen.add(v)
        return v


class HiveMetrics:
    def __init__(self, hive: Hive) -> None:
        self.hive = hive
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.sent = Counter(
            "hyperhive_messages_sent", "Messages sent, by sender", ["agent"], registry=r
        )
        self.delivered = Counter(
            "hyperhive_messages_delivered",
            "Messages delivered, by recipient",
            ["agent"],
            registry=r,
        )
        self.wake = Histogram(
            "hyperhive_recv_wake_latency_seconds",
            "From a message's send to the parked recv that takes it",
            ["agent"],
            buckets=WAKE_BUCKETS,
            registry=r,
        )
        self.turns = Counter(
            "hyperhive_turns", "Turns, by result kind", ["agent", "result"], registry=r
        )
        self.turn_seconds = Histogram(
            "hyperhive_turn_duration_seconds",
            "Turn duration",
            ["agent"],
            buckets=TURN_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "hyperhive_tokens", "Model tokens, by kind", ["agent", "model", "kind"], registry=r
        )
        self.cost = Counter(
            "hyperhive_cost_usd", "Model cost in USD", ["agent", "model"], registry=r
        )
        self.tools = Counter("hyperhive_tool_calls", "Tool calls, by tool", ["tool"], registry=r)
        self.crashes = Counter("hyperhive_agent_crashes", "Agent crashes", ["agent"], registry=r)
        ProcessCollector(registry=r)  # the core's RSS, CPU, fds
        r.register(_AtScrape(self))
        self._models = _Capped()
        self._tool_names = _Capped()
        self._results = _Capped()
        self._failed: dict[str, bool] = {}
        self._snapshot: dict[str, Any] = {}
        hive.hub.add_listener(self._on_event)
        hive.broker.wake_observers.append(self._on_wake)

    # -- counted as it happens ----------------------------------------------------------------

    def _on_wake(self, agent: str, seconds: float) -> None:
        self.wake.labels(agent).observe(seconds)

    def _on_event(self, ev: HiveEvent) -> None:
        d = ev.data
        if ev.kind == "message_sent":
            self.sent.labels(str(d.get("sender"))).inc()
        elif ev.kind == "message_delivered":
            self.delivered.labels(str(d.get("to"))).inc()
        elif ev.kind == "turn_reported":
            self._on_turn(d)
        elif ev.kind == "agent_axes":
            agent = str(d.get("agent"))
            failed = bool(d.get("failed"))
            if failed and not self._failed.get(agent, False):
                self.crashes.labels(agent).inc()
            self._failed[agent] = failed

    def _on_turn(self, d: dict[str, Any]) -> None:
        agent = str(d.get("agent"))
        model = self._models(d.get("model"))
        self.turns.labels(agent, self._results(d.get("result_kind"))).inc()
        self.turn_seconds.labels(agent).observe(float(d.get("duration_ms") or 0) / 1000)
        for kind in ("input", "output"):
            n = int(d.get(f"{kind}_tokens") or 0)
            if n:
                self.tokens.labels(agent, model, kind).inc(n)
        self.cost.labels(agent, model).inc(float(d.get("cost_usd") or 0.0))
        for tool, n in dict(d.get("tool_calls") or {}).items():
            if int(n) > 0:
                self.tools.labels(self._tool_names(tool)).inc(int(n))

    # -- read at scrape time ------------------------------------------------------------------

    async def _gather(self) -> dict[str, Any]:
        hive = self.hive
        snap: dict[str, Any] = {"rows": await status_rows(hive)}
        snap["questions"] = len(await hive.questions.pending()) if hive.runs("questions") else 0
        snap["approvals"] = len(await hive.approvals.pending()) if hive.runs("approvals") else 0
        if hive.runs("budgets"):
            from hyperhive.core.budgets import BudgetsFeature

            budgets = hive.feature("budgets")
            assert isinstance(budgets, BudgetsFeature)
            snap["budgets"] = await budgets.rows()
        if hive.runs("lifecycle"):
            lc = hive.lifecycle
            names = [r.name for r in snap["rows"] if r.running and r.runtime != "external"]
            snap["resources"] = await asyncio.to_thread(
                lambda: {n: lc.resource_usage(n) for n in names}
            )
        return snap

    async def render(self) -> bytes:
        snapshot = await self._gather()
        self._snapshot = snapshot  # no await between this and the (sync) render below
        return generate_latest(self.registry)


class _AtScrape(Collector):
    def __init__(self, m: HiveMetrics) -> None:
        self.m = m

    def describe(self) -> list[Metric]:
        return []  # computed per scrape: nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        snap = self.m._snapshot
        rows = snap.get("rows", [])
        pending = GaugeMetricFamily(
            "hyperhive_messages_pending", "Unread messages, by recipient", labels=["agent"]
        )
        state = GaugeMetricFamily(
            "hyperhive_agent_state", "1 for the agent's current state", labels=["agent", "state"]
        )
        for r in rows:
            pending.add_metric([r.name], float(r.unread or 0))
            state.add_metric([r.name, r.state or "unknown"], 1.0)
        yield pending
        yield state
        yield GaugeMetricFamily(
            "hyperhive_questions_open", "Operator questions open", value=snap.get("questions", 0)
        )
        yield GaugeMetricFamily(
            "hyperhive_approvals_open", "Approvals pending", value=snap.get("approvals", 0)
        )
        b = snap.get("budgets")
        if b is not None:
            used = GaugeMetricFamily(
                "hyperhive_budget_used_ratio",
                "Share of a budget limit used (0 when unlimited)",
                labels=["agent", "limit"],
            )
            limit = GaugeMetricFamily(
                "hyperhive_budget_limit", "A budget limit (0 = none)", labels=["agent", "limit"]
            )
            tripped = GaugeMetricFamily(
                "hyperhive_budget_tripped",
                "1 when the agent's breaker is tripped",
                labels=["agent"],
            )
            for row in b.agents:
                for u in row.limits:
                    used.add_metric([row.agent, u.key], u.fraction)
                    limit.add_metric([row.agent, u.key], u.limit)
                tripped.add_metric([row.agent], 1.0 if row.tripped else 0.0)
            yield used
            yield limit
            yield tripped
            yield GaugeMetricFamily(
                "hyperhive_hive_cost_usd_today",
                "Cost of every agent over the last day",
                value=b.hive.used,
            )
        res = snap.get("resources")
        if res is not None:
            mem = GaugeMetricFamily(
                "hyperhive_agent_memory_bytes", "Memory of the agent's cgroup", labels=["agent"]
            )
            cpu = CounterMetricFamily(
                "hyperhive_agent_cpu_seconds", "CPU time of the agent's cgroup", labels=["agent"]
            )
            for name, u in sorted(res.items()):
                if "memory_bytes" in u:
                    mem.add_metric([name], u["memory_bytes"])
                if "cpu_seconds" in u:
                    cpu.add_metric([name], u["cpu_seconds"])
            yield mem
            yield cpu
