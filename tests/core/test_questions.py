"""Operator questions through real sockets: who gets the answer, answer validation, ttl expiry
(also across a daemon restart), and the answer/cancel/expiry race decided once."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from hyperhive.assembly import build_hive
from hyperhive.client.agent import NO_RETRY, AgentClient
from hyperhive.client.host import HostClient
from hyperhive.clock import Clock, ManualClock
from hyperhive.config import HiveConfig
from hyperhive.core.hive import Hive
from hyperhive.errors import BadRequest, Conflict, NotFound
from hyperhive.paths import HivePaths


@pytest.fixture
def clock(manual_clock: ManualClock) -> Clock:
    return manual_clock


def agent(hive: Hive, name: str) -> AgentClient:
    return AgentClient(hive.paths.agent_sock(name), retry=NO_RETRY)


def answered_events(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for m in rows:
        if m["kind"] == "event" and m["from"] == "system":
            ev = json.loads(m["body"])
            if ev["event"] == "operator_answered":
                out.append(ev)
    return out


async def test_multi_answer_goes_to_the_asker_not_the_manager(hive: Hive) -> None:
    await hive.spawn("alice")
    host = HostClient(hive.paths.host_sock)
    since = hive.hub.last_seq
    async with agent(hive, "alice") as alice:
        await alice.call("recv", max=32)  # start from an empty inbox
        queued = await alice.call(
            "ask_operator", question="Which ones?", options=["opt1", "opt2", "opt3"], multi=True
        )
        qid = queued["id"]
        assert "deadline_at" not in queued
        [row] = (await host.call("questions"))["questions"]
        assert row["id"] == qid and row["asker"] == "alice" and row["multi"] is True
        assert row["options"] == ["opt1", "opt2", "opt3"]
        assert row["asked_at"].endswith("Z") and "deadline_at" not in row and "answer" not in row

        parked = asyncio.create_task(alice.call("recv", wait_seconds=30))
        answered = await host.call("answer", id=qid, options=["opt2", "opt1"], text=" text ")
        assert answered["answer"] == "opt1, opt2, text"  # question order, then the text
        got = await asyncio.wait_for(parked, 10)
    assert answered_events(got["messages"]) == [
        {
            "event": "operator_answered",
            "id": qid,
            "question": "Which ones?",
            "answer": "opt1, opt2, text",
        }
    ]
    async with agent(hive, "manager") as mgr:
        assert answered_events((await mgr.call("recv", max=32))["messages"]) == []
    assert (await host.call("questions"))["questions"] == []
    kinds = {e.kind: e.data for e in hive.hub.history(since)}
    assert kinds["question_added"]["agent"] == "alice"
    assert kinds["question_resolved"]["agent"] == "alice"
    assert kinds["question_resolved"]["how"] == "answered"


async def test_manager_can_ask_too(hive: Hive) -> None:
    async with agent(hive, "manager") as mgr:
        await mgr.call("recv", max=32)  # start from an empty inbox
        queued = await mgr.call("ask_operator", question="ok?")
        await hive.questions.answer(queued["id"], text="yes")
        got = await mgr.call("recv", wait_seconds=10)
    assert answered_events(got["messages"])[0]["answer"] == "yes"


async def test_answer_validation_errors_are_clear(hive: Hive) -> None:
    await hive.spawn("alice")
    host = HostClient(hive.paths.host_sock)
    q = await hive.questions.ask("alice", "pick one", ["a", "b", "c"])
    with pytest.raises(BadRequest, match=r"out of range: question #\d+ has 3 option"):
        await host.call("answer", id=q.id, options=["4"])
    with pytest.raises(BadRequest, match=r"has no option 'z'; its options are: 1\) a, 2\) b"):
        await host.call("answer", id=q.id, options=["z"])
    with pytest.raises(BadRequest, match="takes one option, not 2"):
        await host.call("answer", id=q.id, options=["a", "b"])
    with pytest.raises(BadRequest, match="needs an option or some text"):
        await host.call("answer", id=q.id, options=[], text="  ")
    assert (await hive.questions.get(q.id)).open  # nothing above resolved it
    ok = await host.call("answer", id=q.id, options=["2"], text="because")
    assert ok["answer"] == "b, because"  # 1-based numbers pick options too
    with pytest.raises(Conflict, match=r"already resolved \(answer: b, because\)"):
        await host.call("answer", id=q.id, text="again")
    with pytest.raises(NotFound, match="no operator question #999"):
        await host.call("answer", id=999, text="x")

    free = await hive.questions.ask("alice", "free text only")
    with pytest.raises(BadRequest, match="has no options; answer with text"):
        await hive.questions.answer(free.id, ["1"])
    assert (await hive.questions.answer(free.id, text="sure")).answer == "sure"


async def test_ask_validation(hive: Hive) -> None:
    await hive.spawn("alice")
    async with agent(hive, "alice") as alice:
        with pytest.raises(BadRequest, match="distinct"):
            await alice.call("ask_operator", question="q", options=["a", "a"])
        with pytest.raises(BadRequest, match="ttl_seconds"):
            await alice.call("ask_operator", question="q", ttl_seconds=0)
        with pytest.raises(BadRequest, match="empty"):
            await alice.call("ask_operator", question="   ")


async def test_ttl_expires_once_and_wakes_the_asker(hive: Hive, manual_clock: ManualClock) -> None:
    await hive.spawn("alice")
    async with agent(hive, "alice") as alice:
        await alice.call("recv", max=32)  # start from an empty inbox
        queued = await alice.call("ask_operator", question="still there?", ttl_seconds=60)
        assert queued["deadline_at"].endswith("Z")
        parked = asyncio.create_task(alice.call("recv", wait_seconds=30))
        await manual_clock.advance(59)
        await hive.questions.scheduler.wait_idle()
        assert (await hive.questions.get(queued["id"])).open
        assert not parked.done()
        await manual_clock.advance(2)
        got = await asyncio.wait_for(parked, 10)
        assert answered_events(got["messages"]) == [
            {
                "event": "operator_answered",
                "id": queued["id"],
                "question": "still there?",
                "answer": "[expired]",
            }
        ]
        with pytest.raises(Conflict):
            await hive.questions.answer(queued["id"], text="too late")
        await manual_clock.advance(3600)
        await hive.questions.scheduler.wait_idle()
        assert answered_events((await alice.call("recv", max=32))["messages"]) == []


async def test_expiry_exactly_once_across_a_restart(
    paths: HivePaths, hive_config: HiveConfig, manual_clock: ManualClock
) -> None:
    async with build_hive(paths, hive_config, clock=manual_clock) as h1:
        await h1.spawn("alice")
        q = await h1.questions.ask("alice", "before lunch?", ttl_seconds=60)
        other = await h1.questions.ask("alice", "later", ttl_seconds=600)
        await h1.questions.scheduler.wait_idle()
        assert (await h1.questions.get(q.id)).open
    await manual_clock.advance(120)  # the deadline passes while no daemon runs
    async with build_hive(paths, hive_config, clock=manual_clock) as h2:
        await h2.questions.scheduler.wait_idle()
        assert (await h2.questions.get(q.id)).answer == "[expired]"
        assert (await h2.questions.get(other.id)).open  # re-armed, not expired
        async with agent(h2, "alice") as alice:
            got = await alice.call("recv", max=32)
        assert [e["id"] for e in answered_events(got["messages"])] == [q.id]
    async with build_hive(paths, hive_config, clock=manual_clock) as h3:
        await h3.questions.scheduler.wait_idle()
        await manual_clock.advance(600)  # the re-armed deadline fires in the new daemon
        await h3.questions.scheduler.wait_idle()
        rows = await h3.broker.recent("alice", 50)
    events = answered_events([{"kind": m.kind, "from": m.sender, "body": m.body} for m in rows])
    assert sorted((e["id"], e["answer"]) for e in events) == [
        (q.id, "[expired]"),
        (other.id, "[expired]"),
    ]


async def test_answer_cancel_expiry_race_resolves_once(
    hive: Hive, manual_clock: ManualClock
) -> None:
    await hive.spawn("alice")
    host = HostClient(hive.paths.host_sock)
    ids = []
    for i in range(12):
        q = await hive.questions.ask("alice", f"q{i}", ["a", "b"], ttl_seconds=10)
        ids.append(q.id)
    calls: list[Any] = []
    for n, qid in enumerate(ids):  # alternate who goes first
        pair = [host.call("answer", id=qid, options=["a"]), host.call("cancel_question", id=qid)]
        calls.extend(pair if n % 2 == 0 else pair[::-1])
    calls.insert(len(calls) // 2, manual_clock.advance(11))  # expiry joins the race midway
    results = await asyncio.gather(*calls, return_exceptions=True)
    await hive.questions.scheduler.wait_idle()
    results.pop(len(calls) // 2)
    for n, qid in enumerate(ids):
        ans, can = results[2 * n : 2 * n + 2] if n % 2 == 0 else results[2 * n : 2 * n + 2][::-1]
        assert isinstance(can, dict), can
        final = (await hive.questions.get(qid)).answer
        if isinstance(ans, BaseException):
            assert isinstance(ans, Conflict), ans  # the operator answer lost: a clear error
            assert final in ("[cancelled]", "[expired]")
        else:
            assert final == "a"
        assert can["cancelled"] == (final == "[cancelled]")  # a losing cancel is a no-op
        assert can["answer"] == final
    # in-process, gather starts the cancel first: it wins, the answer is a clear Conflict
    q = await hive.questions.ask("alice", "last one", ["a"])
    cancel, answer = await asyncio.gather(
        hive.questions.cancel(q.id), hive.questions.answer(q.id, ["a"]), return_exceptions=True
    )
    assert isinstance(cancel, tuple) and cancel[1] is True
    assert isinstance(answer, Conflict) and "[cancelled]" in str(answer)
    ids.append(q.id)
    rows = await hive.broker.recent("alice", 100)
    events = answered_events([{"kind": m.kind, "from": m.sender, "body": m.body} for m in rows])
    assert sorted(e["id"] for e in events) == sorted(ids)  # exactly one event per question


async def test_cancel_question(hive: Hive) -> None:
    await hive.spawn("alice")
    host = HostClient(hive.paths.host_sock)
    q = await hive.questions.ask("alice", "cancel me")
    first = await host.call("cancel_question", id=q.id)
    assert first["cancelled"] is True and first["answer"] == "[cancelled]"
    again = await host.call("cancel_question", id=q.id)
    assert again["cancelled"] is False and again["answer"] == "[cancelled]"
    with pytest.raises(NotFound):
        await host.call("cancel_question", id=4242)
    async with agent(hive, "alice") as alice:
        got = await alice.call("recv", max=32)
    assert [e["answer"] for e in answered_events(got["messages"])] == ["[cancelled]"]
