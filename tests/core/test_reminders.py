"""Reminders with a manual clock: delivered at the right time (waking a parked recv), across a
restart, in batches, retried then failed; long bodies refused with a helpful message."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from hyperhive.assembly import build_hive
from hyperhive.client.agent import NO_RETRY, AgentClient
from hyperhive.client.host import HostClient
from hyperhive.clock import Clock, ManualClock
from hyperhive.config import HiveConfig
from hyperhive.core.hive import Hive
from hyperhive.core.reminders import MAX_ATTEMPTS
from hyperhive.errors import BadRequest
from hyperhive.paths import HivePaths


@pytest.fixture
def clock(manual_clock: ManualClock) -> Clock:
    return manual_clock


def agent(hive: Hive, name: str) -> AgentClient:
    return AgentClient(hive.paths.agent_sock(name), retry=NO_RETRY)


async def reminder_bodies(hive: Hive, name: str) -> list[str]:
    """Bodies of the reminders in `name`'s inbox (read or not), oldest first."""
    rows = await hive.broker.recent(name, 1000)
    return [m.body for m in reversed(rows) if m.kind == "reminder"]


def reminders_in(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in rows if m["kind"] == "reminder"]


async def status_of(hive: Hive, name: str) -> dict[str, object]:
    rows = (await HostClient(hive.paths.host_sock).call("agent_status"))["agent_statuses"]
    return next(r for r in rows if r["name"] == name)


async def test_reminder_wakes_a_parked_recv_at_the_right_time(
    hive: Hive, manual_clock: ManualClock
) -> None:
    await hive.spawn("alice")
    since = hive.hub.last_seq
    async with agent(hive, "alice") as alice:
        await alice.call("recv", max=32)  # start from an empty inbox
        r = await alice.call("remind", message="check the build", delay_seconds=600)
        assert r["due_at"].endswith("Z")
        assert (await alice.call("count_pending_reminders"))["count"] == 1
        parked = asyncio.create_task(alice.call("recv", wait_seconds=60))
        await manual_clock.advance(599)
        await hive.reminders.scheduler.wait_idle()
        assert await reminder_bodies(hive, "alice") == []  # not before its time
        assert not parked.done()
        await manual_clock.advance(2)
        got = await asyncio.wait_for(parked, 10)
        [m] = reminders_in(got["messages"])
        assert (m["from"], m["kind"], m["body"]) == ("system", "reminder", "check the build")
        assert (await alice.call("count_pending_reminders"))["count"] == 0
    # the recv wakes on the send; marking it delivered and the event come after: wait for the
    # scheduler to finish that cycle (on PostgreSQL the test saw the row marked before the
    # event was published)
    await hive.reminders.scheduler.wait_idle()
    row = await hive.reminders.store.get(r["id"])
    assert row is not None and row.status == "delivered" and row.attempts == 1
    kinds = [(e.kind, e.data.get("agent")) for e in hive.hub.history(since)]
    assert ("reminder_scheduled", "alice") in kinds and ("reminder_delivered", "alice") in kinds


async def test_at_timestamp_and_argument_checks(hive: Hive, manual_clock: ManualClock) -> None:
    await hive.spawn("alice")
    now = manual_clock.now()
    async with agent(hive, "alice") as alice:
        r = await alice.call("remind", message="at noon", at_unix_timestamp=now + 30)
        with pytest.raises(BadRequest, match="exactly one of delay_seconds or at_unix_timestamp"):
            await alice.call("remind", message="x", delay_seconds=1, at_unix_timestamp=now + 1)
        with pytest.raises(BadRequest, match="exactly one"):
            await alice.call("remind", message="x")
        with pytest.raises(BadRequest, match="in the past"):
            await alice.call("remind", message="x", at_unix_timestamp=now - 3600)
        with pytest.raises(BadRequest, match="not milliseconds"):
            await alice.call("remind", message="x", at_unix_timestamp=now * 1000)
        await manual_clock.advance(30)
        await hive.reminders.scheduler.wait_idle()
        got = await alice.call("recv", max=32)
    assert [m["body"] for m in reminders_in(got["messages"])] == ["at noon"]
    assert (await hive.reminders.store.get(r["id"])) is not None


async def test_long_reminder_needs_a_file(hive: Hive, manual_clock: ManualClock) -> None:
    await hive.spawn("alice")
    long = "x" * 5000
    async with agent(hive, "alice") as alice:
        with pytest.raises(BadRequest) as refused:
            await alice.call("remind", message=long, delay_seconds=5)
        msg = str(refused.value)
        assert "5000 characters" in msg and "4096" in msg
        assert "file under /state" in msg and "file_path" in msg
        for bad in ("notes.md", "/state/../etc/passwd", "/etc/passwd", "/state", "/statefoo/x"):
            with pytest.raises(BadRequest, match="file_path"):
                await alice.call("remind", message=long, delay_seconds=5, file_path=bad)
        ok = await alice.call(
            "remind", message=long, delay_seconds=5, file_path="/state/reminders/plan.md"
        )
        await manual_clock.advance(5)
        await hive.reminders.scheduler.wait_idle()
        got = await alice.call("recv", max=32)
    body = reminders_in(got["messages"])[0]["body"]
    assert body.startswith("reminder: see /state/reminders/plan.md\nxxx")
    assert len(body) < 300
    row = await hive.reminders.store.get(ok["id"])
    assert row is not None and row.file_path == "/state/reminders/plan.md"


async def test_pending_reminders_in_agent_status(hive: Hive, manual_clock: ManualClock) -> None:
    await hive.spawn("alice")
    assert (await status_of(hive, "alice"))["pending_reminders"] == 0
    await hive.reminders.schedule("alice", "one", delay_seconds=10)
    await hive.reminders.schedule("alice", "two", delay_seconds=100)
    assert (await status_of(hive, "alice"))["pending_reminders"] == 2
    assert (await status_of(hive, "manager"))["pending_reminders"] == 0
    await manual_clock.advance(10)
    await hive.reminders.scheduler.wait_idle()
    assert (await status_of(hive, "alice"))["pending_reminders"] == 1


async def test_reminder_survives_a_restart(
    paths: HivePaths, hive_config: HiveConfig, manual_clock: ManualClock
) -> None:
    async with build_hive(paths, hive_config, clock=manual_clock) as h1:
        await h1.spawn("alice")
        r = await h1.reminders.schedule("alice", "after the restart", delay_seconds=60)
        await h1.reminders.scheduler.wait_idle()
    await manual_clock.advance(120)
    async with build_hive(paths, hive_config, clock=manual_clock) as h2:
        await h2.reminders.scheduler.wait_idle()
        async with agent(h2, "alice") as alice:
            got = await alice.call("recv", max=32)
        assert [m["body"] for m in reminders_in(got["messages"])] == ["after the restart"]
    async with build_hive(paths, hive_config, clock=manual_clock) as h3:
        await h3.reminders.scheduler.wait_idle()
        assert await reminder_bodies(h3, "alice") == ["after the restart"]  # not again
        row = await h3.reminders.store.get(r.id)
        assert row is not None and row.status == "delivered"


async def test_due_reminders_go_out_in_batches(hive: Hive, manual_clock: ManualClock) -> None:
    await hive.spawn("alice")
    await asyncio.gather(
        *[hive.reminders.schedule("alice", f"r{i}", delay_seconds=5) for i in range(250)]
    )
    await manual_clock.advance(5)
    await hive.reminders.scheduler.wait_idle()
    assert len(await reminder_bodies(hive, "alice")) == 250
    assert await hive.reminders.count_pending("alice") == 0


async def test_failed_delivery_is_retried_then_marked_failed(
    hive: Hive, manual_clock: ManualClock
) -> None:
    await hive.spawn("alice")
    r = await hive.reminders.schedule("alice", "nobody home", delay_seconds=1)
    await hive.registry.remove("alice")  # delivery now fails: the recipient is gone
    since = hive.hub.last_seq
    await manual_clock.advance(1)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        await hive.reminders.scheduler.wait_idle()
        row = await hive.reminders.store.get(r.id)
        assert row is not None and row.attempts == attempt
        assert row.last_error is not None and "not managed" in row.last_error
        if attempt < MAX_ATTEMPTS:
            assert row.status == "pending"
            await manual_clock.advance(5 * 2 ** (attempt - 1))
    failed = await hive.reminders.store.get(r.id)
    assert failed is not None and failed.status == "failed"
    assert [e.kind for e in hive.hub.history(since)].count("reminder_failed") == 1
    await manual_clock.advance(3600)
    await hive.reminders.scheduler.wait_idle()
    final = await hive.reminders.store.get(r.id)
    assert final is not None and final.attempts == MAX_ATTEMPTS


async def test_an_earlier_reminder_wakes_the_scheduler_early(
    hive: Hive, manual_clock: ManualClock
) -> None:
    """The scheduler sleeps towards the later deadline; a new earlier one pokes it awake."""
    await hive.spawn("alice")
    await hive.reminders.schedule("alice", "late", delay_seconds=600)
    await hive.reminders.scheduler.wait_idle()
    await hive.reminders.schedule("alice", "soon", delay_seconds=10)
    await manual_clock.advance(10)
    await hive.reminders.scheduler.wait_idle()
    async with agent(hive, "alice") as alice:
        got = await alice.call("recv", max=8)
    assert [m["body"] for m in reminders_in(got["messages"])] == ["soon"]
    assert hive.tasks.names().count("reminders") == 1  # one task, not one per reminder


async def test_a_destroyed_incarnations_reminder_never_reaches_the_new_one(
    hive: Hive, manual_clock: ManualClock
) -> None:
    host = HostClient(hive.paths.host_sock)
    await hive.spawn("alice")
    r = await hive.reminders.schedule("alice", "for the old alice", delay_seconds=60)
    await host.call("destroy", name="alice")
    await host.call("spawn", name="alice")
    assert (await status_of(hive, "alice"))["pending_reminders"] == 0
    await manual_clock.advance(61)
    await hive.reminders.scheduler.wait_idle()
    assert await reminder_bodies(hive, "alice") == []
    row = await hive.reminders.store.get(r.id)
    assert row is not None and row.status == "failed" and "destroyed" in (row.last_error or "")
