"""`/api/state` builds shared by the pages asking at once (`web/dashboard/statecache.py`)."""

from __future__ import annotations

import asyncio

from hyperhive.core.hive import Hive
from hyperhive.web.dashboard.statecache import SharedState
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
