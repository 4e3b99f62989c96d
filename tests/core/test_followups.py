"""Open threads (questions plus any plugged-in source) and status text, through real sockets."""

from __future__ import annotations

import json
import re

import pytest

from hyperhive.client.agent import NO_RETRY, AgentClient
from hyperhive.client.host import HostClient
from hyperhive.config import HiveConfig
from hyperhive.core.followups import CancelOutcome
from hyperhive.core.hive import Hive
from hyperhive.errors import BadRequest, NotFound, NotSupported
from hyperhive.paths import HivePaths
from hyperhive.wire.followups import FollowupView
from tests.support.waiting import eventually


def agent(hive: Hive, name: str) -> AgentClient:
    return AgentClient(hive.paths.agent_sock(name), retry=NO_RETRY)


async def status_of(hive: Hive, name: str) -> dict[str, object]:
    rows = (await HostClient(hive.paths.host_sock).call("agent_status"))["agent_statuses"]
    return next(r for r in rows if r["name"] == name)


async def test_open_threads_are_the_askers_own(hive: Hive) -> None:
    await hive.spawn("alice")
    await hive.spawn("bob")
    async with agent(hive, "alice") as alice, agent(hive, "bob") as bob:
        q1 = await alice.call("ask_operator", question="first?", ttl_seconds=600)
        q2 = await alice.call("ask_operator", question="second?")
        await bob.call("ask_operator", question="bob's")
        threads = (await alice.call("get_open_threads"))["threads"]
        assert [t["id"] for t in threads] == [f"q:{q1['id']}", f"q:{q2['id']}"]
        assert threads[0]["kind"] == "question" and "first?" in threads[0]["summary"]
        assert threads[0]["deadline_at"] == q1["deadline_at"] and "deadline_at" not in threads[1]

        with pytest.raises(NotFound, match="you have no question"):
            await bob.call("cancel_thread", id=f"q:{q1['id']}")
        done = await alice.call("cancel_thread", id=f"q:{q1['id']}")
        assert done["cancelled"] is True
        again = await alice.call("cancel_thread", id=f"q:{q1['id']}")
        assert again["cancelled"] is False and "already resolved" in again["note"]
        got = await alice.call("recv", max=32)
        events = [json.loads(m["body"]) for m in got["messages"] if m["kind"] == "event"]
        [ev] = [e for e in events if e["event"] == "operator_answered"]
        assert ev["answer"] == "[cancelled]"

        await hive.questions.answer(q2["id"], text="done")
        assert (await alice.call("get_open_threads"))["threads"] == []
        assert len((await bob.call("get_open_threads"))["threads"]) == 1

        with pytest.raises(BadRequest, match="not of the form prefix:number"):
            await alice.call("cancel_thread", id="q12")
        with pytest.raises(BadRequest, match="unknown thread kind 'zz'"):
            await alice.call("cancel_thread", id="zz:1")


async def test_a_plugged_in_source_joins_the_threads(hive: Hive) -> None:
    """How a feature plugs in (approvals use `a`): a list hook and a cancel hook under its own
    prefix."""
    await hive.spawn("alice")
    pending = {7: "spawn helper"}

    async def list_open(name: str) -> list[FollowupView]:
        if name != "alice":
            return []
        return [
            FollowupView(id=f"x:{n}", kind="example", summary=s, opened_at="2000-01-01T00:00:00Z")
            for n, s in pending.items()
        ]

    async def cancel(name: str, number: int) -> CancelOutcome:
        if number not in pending:
            raise NotFound(f"you have no example #{number}")
        del pending[number]
        return CancelOutcome(True, f"example #{number} withdrawn")

    hive.followups.add_source("x", list_open, cancel)
    with pytest.raises(ValueError, match="already taken"):
        hive.followups.add_source("x", list_open, cancel)
    async with agent(hive, "alice") as alice:
        q = await alice.call("ask_operator", question="and you?")
        ids = [t["id"] for t in (await alice.call("get_open_threads"))["threads"]]
        assert ids == ["x:7", f"q:{q['id']}"]  # oldest first, across sources
        assert await hive.followups.count_for("alice") == 2
        out = await alice.call("cancel_thread", id="x:7")
        assert out == {
            "ok": True,
            "id": "x:7",
            "cancelled": True,
            "note": "example #7 withdrawn",
        }
        with pytest.raises(NotFound):
            await alice.call("cancel_thread", id="x:7")
        assert [t["id"] for t in (await alice.call("get_open_threads"))["threads"]] == [
            f"q:{q['id']}"
        ]


async def test_set_status_shows_while_running_and_omits_otherwise(hive: Hive) -> None:
    await hive.spawn("alice")
    row = await status_of(hive, "alice")
    assert "status_text" not in row and "status_set_at" not in row
    async with agent(hive, "alice") as alice:
        out = await alice.call("set_status", text="  reviewing\nthe   PR  ")
        assert out["status_text"] == "reviewing the PR"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", out["status_set_at"])
        row = await status_of(hive, "alice")
        assert row["running"] is True
        assert row["status_text"] == "reviewing the PR"
        assert row["status_set_at"] == out["status_set_at"]
        with pytest.raises(BadRequest, match="keep it to 200"):
            await alice.call("set_status", text="x" * 201)
        assert (await status_of(hive, "alice"))["status_text"] == "reviewing the PR"
    await eventually(lambda: hive.connections("alice") == 0)
    row = await status_of(hive, "alice")  # set, but not running: omitted
    assert row["running"] is False and "status_text" not in row and "status_set_at" not in row
    async with agent(hive, "alice") as alice:
        await alice.call("whoami")  # connects: running again, the stored status shows
        assert (await status_of(hive, "alice"))["status_text"] == "reviewing the PR"
        cleared = await alice.call("set_status", text="")
        assert cleared == {"ok": True}
        row = await status_of(hive, "alice")
        assert "status_text" not in row and "status_set_at" not in row


async def test_threads_verbs_need_the_feature(paths: HivePaths, hive_config: HiveConfig) -> None:
    """Without the features the verbs answer not_supported (the socket stays up)."""
    async with Hive(paths, hive_config, features=[]) as bare:
        async with agent(bare, "manager") as mgr:
            with pytest.raises(NotSupported):
                await mgr.call("ask_operator", question="anyone?")
            with pytest.raises(NotSupported):
                await mgr.call("get_open_threads")
        with pytest.raises(NotSupported):
            await HostClient(bare.paths.host_sock).call("questions")
