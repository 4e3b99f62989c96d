"""Subscribers that do not keep up cost the daemon a bounded amount, then are dropped with a
resync (issue #12: 300 host subscribers that never read grew the daemon to 583 MiB, and it
stayed there)."""

from __future__ import annotations

import asyncio
import json

from hyperhive.assembly import build_hive
from hyperhive.config import HiveConfig, Sockets
from hyperhive.core.events import EventHub, ResyncNeeded
from hyperhive.core.hive import Hive
from hyperhive.paths import HivePaths
from tests.support.waiting import eventually


async def test_a_subscriber_that_falls_behind_holds_nothing_and_resyncs() -> None:
    hub = EventHub(ring_size=100, queue_size=10)
    follow = hub.follow(0)
    first = asyncio.ensure_future(follow.__anext__())
    hub.publish("one")
    assert (await first).kind == "one"
    assert hub.subscribers == 1
    for i in range(50):  # the follower does not run meanwhile: its queue overflows
        hub.publish("flood", i=i)
    assert hub.subscribers == 0
    assert hub.queued() == 1  # the dropped queue holds only the resync mark, no events
    try:
        await follow.__anext__()
    except ResyncNeeded:
        pass
    else:
        raise AssertionError("no resync after the queue overflowed")
    finally:
        await follow.aclose()


def test_the_default_queue_is_bounded() -> None:
    assert EventHub().queue_size <= 2000


async def subscribe(hive: Hive) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_unix_connection(str(hive.paths.host_sock))
    writer.write(b'{"cmd":"subscribe_agent_status"}\n')
    await writer.drain()
    assert json.loads(await asyncio.wait_for(reader.readline(), 10))["ok"] is True
    await eventually(lambda: hive.hub.subscribers == 1, what="the subscription")
    return reader, writer


async def test_a_host_subscriber_that_falls_behind_gets_a_resync_line(hive: Hive) -> None:
    await hive.spawn("alice")
    reader, writer = await subscribe(hive)
    for i in range(5000):  # a burst the stream cannot follow (it does not run meanwhile)
        hive.hub.publish("agent_connections", agent="alice", connections=i % 3)
    lines = []
    while line := await asyncio.wait_for(reader.readline(), 30):
        lines.append(json.loads(line))
    assert lines[-1]["ok"] is False and lines[-1]["code"] == "resync", lines[-1]
    assert lines[-1]["version"] == 1
    assert hive.hub.subscribers == 0
    writer.close()


async def test_a_host_subscriber_that_never_reads_is_dropped(
    paths: HivePaths, hive_config: HiveConfig
) -> None:
    config = hive_config.model_copy(update={"sockets": Sockets(host_stream_stall_seconds=0.5)})
    async with build_hive(paths, config) as hive:
        await hive.spawn("alice")
        _reader, writer = await subscribe(hive)
        host = hive._host
        assert host is not None and len(host._conns) == 1

        def flood_until_dropped() -> bool:
            # small batches, each under the queue size: the stream keeps up until its writes
            # block on a reader that never reads
            for i in range(200):
                hive.hub.publish("agent_connections", agent="alice", connections=i % 3)
            return not host._conns

        await eventually(flood_until_dropped, timeout=60, what="the stalled subscriber dropped")
        assert hive.hub.subscribers == 0
        writer.close()
