"""`/api/state` builds shared by the pages asking at once (`web/dashboard/statecache.py`)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from hyperhive.core.hive import Hive
from hyperhive.web.dashboard import statecache
from hyperhive.web.dashboard.statecache import SharedState
from tests.support.waiting import eventually
from tests.web.conftest import DashClient


async def test_pages_asking_at_once_share_one_build(dhive: Hive) -> None:
    shared = SharedState(dhive, max_age=3600)
    got = await asyncio.gather(*(shared.get() for _ in range(20)))
    assert shared.builds == 1 and all(g is got[0] for g in got)
    assert await shared.get() is got[0]  # nothing happened since: the same answer

    await dhive.spawn("alice")  # events: the next answer is built again and shows alice
    fresh = await shared.get()
    assert shared.builds == 2
    assert "alice" in [c["name"] for c in fresh["containers"]]
    assert fresh["seq"] >= got[0]["seq"]

    shared.invalidate()  # a state-changing request
    await shared.get()
    assert shared.builds == 3


async def test_an_old_answer_is_not_reused(dhive: Hive) -> None:
    shared = SharedState(dhive, max_age=0)
    await shared.get()
    await shared.get()
    assert shared.builds == 2


async def test_a_post_shows_at_once_in_the_next_state(dhive: Hive, client: DashClient) -> None:
    await dhive.spawn("alice")
    await dhive.broker.send("alice", "operator", "hi")
    before = (await client.get("/api/state")).json()
    assert before["inbox_unread"] == 1
    r = await client.post("/api/inbox/read")
    assert r.status_code == 200, r.text
    after = (await client.get("/api/state")).json()
    assert after["inbox_unread"] == 0


class _Gate:
    """`build_state` held at a gate, so a test decides when each build ends."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.started = 0
        self.open = asyncio.Event()
        real = statecache.build_state

        async def gated(hive: Hive) -> dict[str, Any]:
            self.started += 1
            value = await real(hive)
            await self.open.wait()
            return value

        monkeypatch.setattr(statecache, "build_state", gated)


async def test_requests_during_a_build_share_at_most_one_more(
    dhive: Hive, monkeypatch: pytest.MonkeyPatch
) -> None:
    # ten tabs acting at once: every POST invalidates, every event moves the seq, and every
    # tab asks again; on main each ask started its own build, which queued on the loop
    gate = _Gate(monkeypatch)
    shared = SharedState(dhive, max_age=3600)
    first = asyncio.ensure_future(shared.get())
    await eventually(lambda: gate.started == 1, what="the first build")
    later = []
    for i in range(10):
        await dhive.broker.send("manager", "operator", f"tab {i}")  # an event: a new seq
        shared.invalidate()  # and a POST
        later.append((dhive.hub.last_seq, asyncio.ensure_future(shared.get())))
    await asyncio.sleep(0)
    assert gate.started == 1  # the next build waits for the running one
    gate.open.set()
    got = await asyncio.gather(*(f for _, f in later))
    assert (await first)["seq"] < later[0][0]
    assert shared.builds == 2  # the running one and one more, shared by all ten
    assert all(g is got[0] for g in got)
    assert all(g["seq"] >= seq for (seq, _), g in zip(later, got, strict=True))
    assert [m["body"] for m in got[0]["inbox"]][:1] == ["tab 9"]


async def test_a_request_after_an_invalidation_does_not_take_the_running_build(
    dhive: Hive, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = _Gate(monkeypatch)
    shared = SharedState(dhive, max_age=3600)
    first = asyncio.ensure_future(shared.get())
    same = asyncio.ensure_future(shared.get())  # before any change: shares the running build
    await eventually(lambda: gate.started == 1, what="the first build")
    shared.invalidate()
    after = asyncio.ensure_future(shared.get())
    gate.open.set()
    assert (await same) is (await first)
    assert (await after) is not (await first) and shared.builds == 2
    assert await shared.get() is await after  # nothing since: the cached answer


async def test_a_request_that_goes_away_fails_no_other(
    dhive: Hive, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = _Gate(monkeypatch)
    shared = SharedState(dhive, max_age=3600)
    gone = asyncio.ensure_future(shared.get())
    stays = asyncio.ensure_future(shared.get())
    await eventually(lambda: gate.started == 1, what="the build")
    gone.cancel()
    gate.open.set()
    assert (await stays)["ok"] is True
    with pytest.raises(asyncio.CancelledError):
        await gone
