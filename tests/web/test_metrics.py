"""`/metrics` scraped over HTTP and parsed with `prometheus_client.parser`: message counts
and pending mail, the recv wake latency, turns/tokens/cost/tools from the harness's reports,
questions open, agent states, budget use, the core's process figures; the token guard."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from hyperhive.budgetconfig import AgentLimitsCfg, Budgets
from hyperhive.client.agent import NO_RETRY, AgentClient
from hyperhive.core.hive import Hive
from hyperhive.paths import HivePaths
from hyperhive.runtime.fake import FakeWorld
from tests.support.httpapi import assert_error
from tests.support.waiting import eventually
from tests.web.conftest import DashClient, dash_config, fake_hive

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    out: Samples = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


async def scrape(client: DashClient) -> Samples:
    r = await client.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return parse(r.text)


async def test_metrics_count_what_happens(dhive: Hive, client: DashClient) -> None:
    await dhive.spawn("alice")
    async with AgentClient(dhive.paths.agent_sock("alice"), retry=NO_RETRY) as alice:
        await alice.call("recv", max=32)  # start from an empty inbox
        parked = asyncio.ensure_future(alice.call("recv", wait_seconds=30))
        await eventually(lambda: dhive.broker.wakeups._waiters.get("alice"), what="parked recv")
        await dhive.broker.send("operator", "alice", "wake up")
        got = await asyncio.wait_for(parked, 30)
        assert [m["body"] for m in got["messages"]] == ["wake up"]
        await alice.call("ack")
        await dhive.broker.send("operator", "alice", "still unread")
        await alice.call(
            "report_turn",
            model="haiku",
            result_kind="ok",
            duration_ms=2500,
            input_tokens=100,
            output_tokens=7,
            cost_usd=0.25,
            tool_calls={"Bash": 2, "mcp__hyperhive__send": 1},
        )
        await alice.call("report_turn", model="haiku", result_kind="failed", duration_ms=10)
        await alice.call("ask_operator", question="ok?")
        await alice.call("send", to="manager", body="hi")
        s = await scrape(client)

    assert value(s, "hyperhive_messages_sent_total", agent="operator") == 2
    assert value(s, "hyperhive_messages_sent_total", agent="alice") == 1
    assert value(s, "hyperhive_messages_pending", agent="alice") == 1
    # the start-up kick (acknowledged by the parked recv) and "wake up"
    assert value(s, "hyperhive_messages_delivered_total", agent="alice") == 2
    assert value(s, "hyperhive_messages_pending", agent="manager") >= 1
    assert value(s, "hyperhive_recv_wake_latency_seconds_count", agent="alice") >= 1
    assert value(s, "hyperhive_turns_total", agent="alice", result="ok") == 1
    assert value(s, "hyperhive_turns_total", agent="alice", result="failed") == 1
    assert value(s, "hyperhive_turn_duration_seconds_count", agent="alice") == 2
    assert value(s, "hyperhive_turn_duration_seconds_sum", agent="alice") == pytest.approx(2.51)
    assert value(s, "hyperhive_tokens_total", agent="alice", model="haiku", kind="input") == 100
    assert value(s, "hyperhive_tokens_total", agent="alice", model="haiku", kind="output") == 7
    assert value(s, "hyperhive_cost_usd_total", agent="alice", model="haiku") == 0.25
    assert value(s, "hyperhive_tool_calls_total", tool="Bash") == 2
    assert value(s, "hyperhive_tool_calls_total", tool="mcp__hyperhive__send") == 1
    assert value(s, "hyperhive_questions_open") == 1
    assert value(s, "hyperhive_approvals_open") == 0
    states = {dict(k[1])["agent"] for k in s if k[0] == "hyperhive_agent_state"}
    assert states == {"manager", "alice"}
    assert (
        value(s, "hyperhive_budget_used_ratio", agent="alice", limit="cost_usd_per_day") == 0
    )  # no limit configured
    assert value(s, "hyperhive_budget_tripped", agent="alice") == 0
    assert value(s, "hyperhive_hive_cost_usd_today") == 0.25
    assert value(s, "process_resident_memory_bytes") > 0
    assert ("process_cpu_seconds_total", frozenset()) in s


async def test_crashes_and_budget_use(paths: HivePaths, world: FakeWorld) -> None:
    cfg = dash_config().model_copy(
        update={"budgets": Budgets(defaults=AgentLimitsCfg(turns_per_hour=4))}
    )
    async with fake_hive(paths, cfg, world) as hive:
        await hive.spawn("bob")
        hive.lifecycle.runtime_for("bob").exit("bob", 1)  # type: ignore[attr-defined]
        await hive.crash_watch.tick()
        async with AgentClient(hive.paths.agent_sock("bob"), retry=NO_RETRY) as bob:
            await bob.call("report_turn", model="sonnet")
        async with httpx.AsyncClient(base_url=hive.dashboard_url, timeout=30) as http:
            c = DashClient(http)
            await c.open()
            s = await scrape(c)
    assert value(s, "hyperhive_agent_crashes_total", agent="bob") == 1
    assert value(s, "hyperhive_budget_used_ratio", agent="bob", limit="turns_per_hour") == 0.25
    assert value(s, "hyperhive_budget_limit", agent="bob", limit="turns_per_hour") == 4


async def test_metrics_need_the_token_off_loopback(
    paths: HivePaths, short_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HIVE_DASHBOARD", raising=False)
    token = "s3cret-operator-token-0123456789"
    (short_tmp / "token").write_text(token)
    config = dash_config(listen="0.0.0.0:0", token_file=str(short_tmp / "token"))
    async with fake_hive(paths, config, FakeWorld()) as hive:
        port = hive.dashboard_url.rsplit(":", 1)[1].rstrip("/")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            assert_error(await http.get("/metrics"), 401, "unauthorized")
            r = await http.get("/metrics", headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 200
            assert parse(r.text)[("hyperhive_questions_open", frozenset())] == 0
