"""Spawn generations: every spawn/revive of a name is a new incarnation, and mail, kills,
restarts and question answers meant for an old one never reach the new one."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from hyperhive.client.agent import NO_RETRY, AgentClient
from hyperhive.client.host import HostClient
from hyperhive.config import Defaults, HiveConfig
from hyperhive.core.hive import Hive
from hyperhive.errors import Conflict
from hyperhive.paths import HivePaths
from hyperhive.runtime.fake import FakeWorld
from tests.support.lifecycle import fake_hive
from tests.support.storage import query


def agent(hive: Hive, name: str) -> AgentClient:
    return AgentClient(hive.paths.agent_sock(name), retry=NO_RETRY)


async def test_generation_bumps_on_every_spawn_and_revive(hive: Hive) -> None:
    host = HostClient(hive.paths.host_sock)
    await hive.spawn("alice")
    assert hive.registry.require("alice").generation == 1
    await host.call("destroy", name="alice")
    await host.call("spawn", name="alice")  # revive the tombstone
    assert hive.registry.require("alice").generation == 2
    async with agent(hive, "alice") as alice:
        assert (await alice.call("whoami"))["generation"] == 2
    await host.call("destroy", name="alice", purge=True)
    await hive.spawn("alice")  # even after a purge the name never reuses a generation
    rows = (await host.call("agent_status"))["agent_statuses"]
    assert {r["name"]: r["generation"] for r in rows}["alice"] == 3


@pytest.mark.parametrize("indexed", [False, True])
async def test_mail_for_a_destroyed_agent_never_reaches_the_new_one(
    hive: Hive, indexed: bool
) -> None:
    host = HostClient(hive.paths.host_sock)
    await hive.spawn("alice")
    if indexed:  # a recv loaded alice's in-memory unread index before the mail came
        async with agent(hive, "alice") as alice:
            assert (await alice.call("recv"))["messages"] == []
    await host.call("send", to="alice", body="for the old alice")
    assert await hive.broker.unread("alice") == 1
    await host.call("destroy", name="alice")
    await host.call("spawn", name="alice")
    assert await hive.broker.unread("alice") == 0
    async with agent(hive, "alice") as alice:
        assert (await alice.call("recv"))["messages"] == []
        await host.call("send", to="alice", body="for the new alice")
        got = await alice.call("recv")
    assert [m["body"] for m in got["messages"]] == ["for the new alice"]
    # the old row is kept (history), undelivered, stamped with its generation
    gens = await query(
        hive,
        "SELECT body, recipient_generation FROM messages WHERE recipient = 'alice' ORDER BY id",
    )
    assert gens == [("for the old alice", 1), ("for the new alice", 2)]


async def test_operator_mail_has_no_generation(hive: Hive) -> None:
    await hive.spawn("alice")
    async with agent(hive, "alice") as alice:
        await alice.call("send", to="operator", body="hi")
    host = HostClient(hive.paths.host_sock)
    assert (await host.call("inbox"))["unread"] == 1


async def test_answer_to_an_old_incarnations_question_is_not_delivered(hive: Hive) -> None:
    host = HostClient(hive.paths.host_sock)
    await hive.spawn("alice")
    async with agent(hive, "alice") as alice:
        qid = (await alice.call("ask_operator", question="old question?"))["id"]
    await host.call("destroy", name="alice")
    await host.call("spawn", name="alice")
    async with agent(hive, "alice") as alice:
        assert (await alice.call("get_open_threads"))["threads"] == []
        await host.call("answer", id=qid, text="too late")
        got = await alice.call("recv", max=32)
    events = [json.loads(m["body"])["event"] for m in got["messages"] if m["kind"] == "event"]
    assert "operator_answered" not in events


@pytest.fixture
def world() -> FakeWorld:
    return FakeWorld()


@pytest.fixture
async def fhive(paths: HivePaths, world: FakeWorld) -> AsyncIterator[Hive]:
    cfg = HiveConfig(defaults=Defaults(runtime="fake"))
    async with fake_hive(paths, cfg, world) as h:
        yield h


async def test_a_stale_kill_or_restart_never_hits_a_new_incarnation(
    fhive: Hive, world: FakeWorld
) -> None:
    host = HostClient(fhive.paths.host_sock)
    await host.call("spawn", name="alice")
    await host.call("destroy", name="alice")
    await host.call("spawn", name="alice")
    assert world.agents["alice"].running
    for verb in ("kill", "restart"):
        with pytest.raises(Conflict, match="generation"):
            await host.call(verb, name="alice", generation=1)
    assert world.agents["alice"].running
    async with agent(fhive, "manager") as mgr:
        with pytest.raises(Conflict, match="generation"):
            await mgr.call("kill", name="alice", generation=1)
        assert world.agents["alice"].running
        await mgr.call("kill", name="alice", generation=2)
    assert not world.agents["alice"].running
    await host.call("restart", name="alice", generation=2)
    assert world.agents["alice"].running


async def test_a_revival_takes_its_old_unread_mail_only_when_the_operator_asks(
    hive: Hive,
) -> None:
    host = HostClient(hive.paths.host_sock)
    await hive.spawn("alice")
    async with agent(hive, "alice") as alice:
        await host.call("send", to="alice", body="read before")
        assert [m["body"] for m in (await alice.call("recv"))["messages"]] == ["read before"]
        assert (await alice.call("recv"))["messages"] == []  # the index is loaded and empty
    await host.call("send", to="alice", body="unread 1")
    await host.call("send", to="alice", body="unread 2")
    await host.call("destroy", name="alice")
    await host.call("spawn", name="alice", keep_mail=True)
    assert hive.registry.require("alice").generation == 2
    assert await hive.broker.unread("alice") == 2
    async with agent(hive, "alice") as alice:
        got = await alice.call("recv")
    assert [m["body"] for m in got["messages"]] == ["unread 1", "unread 2"]
    # two generations on: nothing older than the last incarnation comes back
    await host.call("send", to="alice", body="for gen 2")
    await host.call("destroy", name="alice")
    await host.call("spawn", name="alice")
    await host.call("destroy", name="alice")
    await host.call("spawn", name="alice", keep_mail=True)
    assert await hive.broker.unread("alice") == 0
