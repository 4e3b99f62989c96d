"""Budgets through real sockets: the 80 % warning, the breaker (pause, who is told, the
operator question and acting on its answer), nothing lost while tripped, the runaway guard,
`budgets` on the host socket, the attention item, and a trip surviving a restart."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hyperhive.assembly import build_hive
from hyperhive.budgetconfig import AgentLimitsCfg, Budgets
from hyperhive.client.agent import NO_RETRY, AgentClient
from hyperhive.client.host import HostClient
from hyperhive.config import Defaults, HiveConfig
from hyperhive.core.budgets import REPORTS_PER_MINUTE, BudgetsFeature
from hyperhive.core.hive import Hive
from hyperhive.core.status import status_row
from hyperhive.core.store.budgets_base import Trip
from hyperhive.paths import HivePaths
from tests.support.waiting import eventually


def config(**budgets: Any) -> HiveConfig:
    return HiveConfig(defaults=Defaults(runtime="external"), budgets=Budgets(**budgets))


@pytest.fixture
def hive_config() -> HiveConfig:
    return config(defaults=AgentLimitsCfg(cost_usd_per_day=1.0))


def agent(hive: Hive, name: str) -> AgentClient:
    return AgentClient(hive.paths.agent_sock(name), retry=NO_RETRY)


def events(rows: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    out = []
    for m in rows:
        if m["kind"] == "event" and m["from"] == "system":
            ev = json.loads(m["body"])
            if ev["event"] == name:
                out.append(ev)
    return out


def budgets(hive: Hive) -> BudgetsFeature:
    feature = hive.feature("budgets")
    assert isinstance(feature, BudgetsFeature)
    return feature


async def report(c: AgentClient, cost: float, tokens: int = 10) -> None:
    await c.call(
        "report_turn",
        model="haiku",
        result_kind="ok",
        duration_ms=1200,
        input_tokens=tokens,
        output_tokens=tokens,
        cost_usd=cost,
        tool_calls={"Bash": 2},
    )


async def paused(hive: Hive, name: str) -> bool:
    rec = hive.registry.get(name)
    return rec is not None and rec.paused


async def test_warning_then_trip_then_resume_once_loses_nothing(hive: Hive) -> None:
    await hive.spawn("alice")
    host = HostClient(hive.paths.host_sock)
    since = hive.hub.last_seq
    async with agent(hive, "alice") as alice, agent(hive, "manager") as mgr:
        await alice.call("recv", max=32)
        await mgr.call("recv", max=32)
        await report(alice, 0.85)
        got = await alice.call("recv", max=32)
        [warning] = events(got["messages"], "budget_warning")
        assert warning["limit"] == "cost_usd_per_day" and "85%" in warning["note"]
        await report(alice, 0.05)  # still over 80 %: said once
        assert events((await alice.call("recv", max=32))["messages"], "budget_warning") == []

        await report(alice, 0.2)  # 1.10 of 1.00: the breaker trips
        assert await paused(hive, "alice")
        [told] = events((await mgr.call("recv", max=32))["messages"], "budget_tripped")
        assert told["agent"] == "alice" and "cost_usd_per_day" in told["reason"]
        inbox = (await host.call("inbox"))["rows"]
        assert any(json.loads(m["body"]).get("event") == "budget_tripped" for m in inbox)
        [q] = (await host.call("questions"))["questions"]
        assert q["asker"] == "manager" and "alice" in q["question"]
        assert q["options"] == ["raise cost_usd_per_day by $0.50", "resume once", "keep paused"]
        assert [a.count for a in await budgets(hive).attention()] == [1]

        await host.call("send", to="alice", body="work while tripped")
        assert (await alice.call("recv", max=32))["messages"] == []  # queued, not delivered

        await host.call("answer", id=q["id"], options=["resume once"])
        await eventually(lambda: not hive.registry.require("alice").paused, what="resume")
        got = await alice.call("recv", max=32, wait_seconds=10)
        assert [m["body"] for m in got["messages"]] == ["work while tripped"]
        assert budgets(hive).tripped() == {}
        assert [a.count for a in await budgets(hive).attention()] == [0]

        await report(alice, 0.01)  # still over: resume once means once
        assert await paused(hive, "alice")
    kinds = [e.kind for e in hive.hub.history(since)]
    assert "budget_warning" in kinds and "budget_tripped" in kinds and "budget_reset" in kinds
    assert "turn_reported" in kinds


async def test_raise_the_limit_resumes_with_more_room(hive: Hive) -> None:
    await hive.spawn("alice")
    host = HostClient(hive.paths.host_sock)
    async with agent(hive, "alice") as alice:
        await report(alice, 1.0)
        [q] = (await host.call("questions"))["questions"]
        await host.call("answer", id=q["id"], options=["1"])
        await eventually(lambda: not hive.registry.require("alice").paused, what="resume")
        rows = (await host.call("budgets"))["agents"]
        row = next(r for r in rows if r["agent"] == "alice")
        day = next(u for u in row["limits"] if u["key"] == "cost_usd_per_day")
        assert day["limit"] == 1.5 and day["used"] == 1.0 and row.get("tripped") is None
        await report(alice, 0.4)
        assert not await paused(hive, "alice")
        await report(alice, 0.2)
        assert await paused(hive, "alice")


async def test_keep_paused_then_unpause_by_hand_ends_the_trip(hive: Hive) -> None:
    await hive.spawn("alice")
    host = HostClient(hive.paths.host_sock)
    async with agent(hive, "alice") as alice:
        await report(alice, 2.0)
        [q] = (await host.call("questions"))["questions"]
        await host.call("answer", id=q["id"], options=["keep paused"])
        await eventually(lambda: budgets(hive).tripped()["alice"].question_id is None, what="kept")
        assert await paused(hive, "alice")
        row = next(r for r in (await host.call("budgets"))["agents"] if r["agent"] == "alice")
        assert "cost_usd_per_day" in row["tripped"]["reason"] and row["worst"] == 2.0
        rows = (await host.call("agent_status"))["agent_statuses"]
        status = next(r for r in rows if r["name"] == "alice")
        assert status["budget_tripped"] is True and status["budget_used"] == 2.0
        await host.call("set_paused", name="alice", paused=False)
        await eventually(lambda: budgets(hive).tripped() == {}, what="trip ended")


@pytest.mark.parametrize(
    ("limits", "pairs", "key"),
    [
        ({"runaway_messages_per_minute": 3}, [("alice", "bob")] * 4, "runaway_messages"),
        (
            {"runaway_messages_per_minute": 0, "runaway_exchanges_per_minute": 4},
            ([("alice", "bob"), ("bob", "alice")] * 3)[:5],
            "runaway_exchanges",
        ),
    ],
)
async def test_the_runaway_guard_trips_the_breaker(
    paths: HivePaths, limits: dict[str, int], pairs: list[tuple[str, str]], key: str
) -> None:
    async with build_hive(paths, config(**limits)) as hive:
        await hive.spawn("alice")
        await hive.spawn("bob")
        async with agent(hive, "alice") as alice, agent(hive, "bob") as bob:
            clients = {"alice": alice, "bob": bob}
            for sender, to in pairs[:-1]:
                await clients[sender].call("send", to=to, body="ping")
            assert budgets(hive).tripped() == {}
            sender, to = pairs[-1]
            await clients[sender].call("send", to=to, body="one too many")
            trips = await eventually(lambda: budgets(hive).tripped(), what="trip")
            assert isinstance(trips, dict)
            [(name, trip)] = trips.items()
            assert name == sender and trip.key.startswith(key) and "runaway" in trip.reason
            assert await paused(hive, sender)
            # the message that tripped it was delivered all the same
            got = await clients[to].call("recv", max=32)
            assert "one too many" in [m["body"] for m in got["messages"]]


async def test_a_trip_and_its_question_survive_a_restart(
    paths: HivePaths, hive_config: HiveConfig
) -> None:
    async with build_hive(paths, hive_config) as hive:
        await hive.spawn("alice")
        async with agent(hive, "alice") as alice:
            await report(alice, 1.5)
        assert await paused(hive, "alice")
    async with build_hive(paths, hive_config) as hive:
        assert await paused(hive, "alice")
        assert set(budgets(hive).tripped()) == {"alice"}
        host = HostClient(hive.paths.host_sock)
        [q] = (await host.call("questions"))["questions"]
        await host.call("answer", id=q["id"], options=["resume once"])
        await eventually(lambda: not hive.registry.require("alice").paused, what="resume")
        assert budgets(hive).tripped() == {}


async def test_bad_reports_are_refused_with_the_error_shape(hive: Hive) -> None:
    await hive.spawn("alice")
    async with agent(hive, "alice") as alice:
        for _ in range(REPORTS_PER_MINUTE):
            await alice.call("report_turn")
        answer = await alice.request_answer({"cmd": "report_turn"})
        assert answer.body["ok"] is False and answer.body["code"] == "unavailable"
        answer = await alice.request_answer({"cmd": "report_turn", "input_tokens": -1})
        assert answer.body["ok"] is False and answer.body["code"] == "bad_request"
        answer = await alice.request_answer({"cmd": "report_turn", "cost_usd": "lots"})
        assert answer.body["ok"] is False
    rows = (await HostClient(hive.paths.host_sock).call("budgets"))["agents"]
    alice = next(r for r in rows if r["agent"] == "alice")
    turns = next(u for u in alice["limits"] if u["key"] == "turns_per_hour")
    assert turns["used"] == REPORTS_PER_MINUTE  # the refused ones were not stored
    assert all(u["used"] == 0 for u in alice["limits"] if u["key"] != "turns_per_hour")


async def test_the_hive_wide_daily_cost_trips_the_agent_that_crosses_it(paths: HivePaths) -> None:
    async with build_hive(paths, config(hive_cost_usd_per_day=1.0)) as hive:
        await hive.spawn("alice")
        await hive.spawn("bob")
        async with agent(hive, "alice") as alice, agent(hive, "bob") as bob:
            await report(alice, 0.6)
            assert budgets(hive).tripped() == {}
            await report(bob, 0.5)
        [(name, trip)] = budgets(hive).tripped().items()
        assert name == "bob" and trip.key == "hive_cost_usd_per_day"
        assert "the hive's" in trip.reason and await paused(hive, "bob")
        assert not await paused(hive, "alice")
        data = await HostClient(hive.paths.host_sock).call("budgets")
        assert data["hive"]["used"] == pytest.approx(1.1) and data["hive"]["fraction"] > 1


async def test_a_stored_trip_whose_pause_never_happened_pauses_on_start(
    paths: HivePaths, hive_config: HiveConfig
) -> None:
    async with build_hive(paths, hive_config) as hive:
        await hive.spawn("alice")
        # a crash between storing the trip and pausing the agent
        await budgets(hive).store.trip(Trip("alice", "turns_per_hour", "over", "2026", 1.0))
        assert not await paused(hive, "alice")
    async with build_hive(paths, hive_config) as hive:
        assert await paused(hive, "alice")
        assert set(budgets(hive).tripped()) == {"alice"}
        await hive.registry.update("alice", paused=False)  # the operator unpauses by hand
        await eventually(lambda: budgets(hive).tripped() == {}, what="trip ended")


async def test_status_rows_carry_tokens_and_cost_today(hive: Hive) -> None:
    await hive.spawn("alice")
    before = await status_row(hive, "alice")
    assert before.tokens_today is None and before.cost_today_usd is None
    async with agent(hive, "alice") as alice:
        await report(alice, 0.25, tokens=100)
        await report(alice, 0.05, tokens=7)
    after = await status_row(hive, "alice")
    assert after.tokens_today == 214 and after.cost_today_usd == pytest.approx(0.3)
    budgets(hive)._today.clear()  # as a restarted core: the day is read back from the store
    assert await budgets(hive).today("alice") == (214, pytest.approx(0.3))
