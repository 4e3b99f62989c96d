"""One state per agent, from one source: harness reports (`report_state`) combined with
lifecycle facts, in `agent_status` rows, with an `agent_state` hub event on every change."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from hyperhive.client.agent import NO_RETRY, AgentClient
from hyperhive.client.host import HostClient
from hyperhive.config import Defaults, HiveConfig
from hyperhive.core.hive import Hive
from hyperhive.errors import BadRequest
from hyperhive.paths import HivePaths
from hyperhive.runtime.fake import FakeRuntime, FakeWorld
from tests.support.lifecycle import fake_hive
from tests.support.waiting import eventually


def agent(hive: Hive, name: str) -> AgentClient:
    return AgentClient(hive.paths.agent_sock(name), retry=NO_RETRY)


async def row(hive: Hive, name: str) -> dict[str, Any]:
    rows = (await HostClient(hive.paths.host_sock).call("agent_status"))["agent_statuses"]
    found: dict[str, Any] = {r["name"]: r for r in rows}[name]
    return found


def state_events(hive: Hive, name: str, since: int) -> list[dict[str, Any]]:
    return [
        e.data
        for e in hive.hub.history(since)
        if e.kind == "agent_state" and e.data.get("agent") == name
    ]


async def test_reports_become_the_rows_state(hive: Hive) -> None:
    await hive.spawn("alice")
    assert (await row(hive, "alice"))["state"] == "stopped"  # external: nobody connected
    async with agent(hive, "alice") as alice:
        await alice.call("whoami")
        assert (await row(hive, "alice"))["state"] == "unknown"  # connected, no report yet
        since = hive.hub.last_seq
        await alice.call(
            "report_state", state="in_turn", turn_started_at="2026-01-01T00:00:00.000000Z"
        )
        r = await row(hive, "alice")
        assert r["state"] == "in_turn" and r["state_since"] == "2026-01-01T00:00:00.000000Z"
        await alice.call("report_state", state="in_turn", tool="Bash")
        r = await row(hive, "alice")
        assert r["state_note"] == "running Bash"
        await alice.call("report_state", state="failed", note="model error:\n overloaded")
        r = await row(hive, "alice")
        assert r["state"] == "failed" and r["state_note"] == "model error: overloaded"
        await alice.call("report_state", state="idle")
        assert (await row(hive, "alice"))["state"] == "idle"
        # every change was announced once, live (the agent-states task, no status call needed)
        await eventually(lambda: len(state_events(hive, "alice", since)) >= 4)
        seen = [(e["state"], e["note"]) for e in state_events(hive, "alice", since)]
        assert seen == [
            ("in_turn", None),
            ("in_turn", "running Bash"),
            ("failed", "model error: overloaded"),
            ("idle", None),
        ]
        with pytest.raises(BadRequest):
            await alice.call("report_state", state="dancing")
    # the harness went away: its report is forgotten with its last connection
    await eventually(lambda: hive.connections("alice") == 0)
    assert (await row(hive, "alice"))["state"] == "stopped"


async def test_state_changes_are_published_without_anyone_asking(hive: Hive) -> None:
    await hive.spawn("alice")
    since = hive.hub.last_seq
    async with agent(hive, "alice") as alice:
        await alice.call("report_state", state="idle")
        # the spawn's own `stopped` may be published after spawn returns (on PostgreSQL the
        # derivation runs a moment later): wait for the report's state to be the last one
        await eventually(
            lambda: [e["state"] for e in state_events(hive, "alice", since)][-1:] == ["idle"]
        )
        await alice.call("ask_operator", question="May I?")
        await eventually(
            lambda: state_events(hive, "alice", since)[-1]["state"] == "waiting_operator"
        )
        assert "May I?" in state_events(hive, "alice", since)[-1]["note"]
        await HostClient(hive.paths.host_sock).call("set_paused", name="alice", paused=True)
        await eventually(lambda: state_events(hive, "alice", since)[-1]["state"] == "paused")


async def test_status_subscription_carries_the_state(hive: Hive) -> None:
    await hive.spawn("alice")
    host = HostClient(hive.paths.host_sock)
    async with agent(hive, "alice") as alice:
        await alice.call("report_state", state="idle")
        rows = (await host.call("agent_status"))["agent_statuses"]
        assert {r["name"]: r["state"] for r in rows}["alice"] == "idle"
        assert all("state" in r and "state_since" in r for r in rows)


@pytest.fixture
def world() -> FakeWorld:
    return FakeWorld()


@pytest.fixture
async def fhive(paths: HivePaths, world: FakeWorld) -> AsyncIterator[Hive]:
    cfg = HiveConfig(defaults=Defaults(runtime="fake"))
    async with fake_hive(paths, cfg, world) as h:
        yield h


async def test_lifecycle_facts_win_over_reports(fhive: Hive, world: FakeWorld) -> None:
    host = HostClient(fhive.paths.host_sock)
    await host.call("spawn", name="alice")
    assert (await row(fhive, "alice"))["state"] == "starting"  # running, no harness yet
    async with agent(fhive, "alice") as alice:
        await alice.call("report_state", state="idle")
        assert (await row(fhive, "alice"))["state"] == "idle"
        await host.call("stop", scope={"agent_names": ["alice"]})
        assert (await row(fhive, "alice"))["state"] == "stopped"
        await host.call("start", scope={"agent_names": ["alice"]})
        await fhive.crash_watch.tick()  # seeds
        rt = fhive.lifecycle.runtime_for("alice")
        assert isinstance(rt, FakeRuntime)
        rt.exit("alice", 3)
        await eventually(lambda: not world.agents["alice"].running)
        await fhive.crash_watch.tick()
        r = await row(fhive, "alice")
        assert r["state"] == "crashed" and r["failed"] is True
        await eventually(
            lambda: state_events(fhive, "alice", 0)[-1]["state"] == "crashed", what="crashed"
        )
