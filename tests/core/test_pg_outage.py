"""The database away for a while (its own throwaway cluster, stopped and started again): the
daemons keep running and answer verbs with the one error shape (`unavailable`), and when the
database returns nothing committed is lost and cross-process wake-ups resume."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from hyperhive.assembly import build_hive
from hyperhive.client.host import HostClient
from hyperhive.config import HiveConfig
from hyperhive.errors import Unavailable
from hyperhive.paths import HivePaths
from tests.support.postgres import PgCluster
from tests.support.waiting import eventually

WITHOUT = ("dashboard", "lifecycle")


@pytest.fixture
def own_cluster() -> Iterator[PgCluster]:
    with PgCluster() as cluster:
        yield cluster


async def test_database_away_then_back(
    short_tmp: Path, hive_config: HiveConfig, own_cluster: PgCluster
) -> None:
    url = own_cluster.new_database()
    a_paths, b_paths = HivePaths(short_tmp / "a"), HivePaths(short_tmp / "b")
    async with build_hive(a_paths, hive_config, database=url, without=WITHOUT) as a:
        await a.spawn("bob")
        async with build_hive(b_paths, hive_config, database=url, without=WITHOUT) as b:
            host_a = HostClient(a.paths.host_sock)
            await host_a.call("send", to="bob", body="before")
            await asyncio.to_thread(own_cluster.stop)
            with pytest.raises(Unavailable):
                await host_a.call("send", to="bob", body="lost?")
            # the daemon is alive and serves what needs no database
            assert "bob" in (await host_a.call("list"))["agents"]
            await asyncio.to_thread(own_cluster.start)
            await asyncio.to_thread(own_cluster.wait_ready)

            async def sent() -> bool:
                try:
                    await host_a.call("send", to="bob", body="after")
                except Unavailable:
                    return False
                return True

            await eventually(sent, timeout=60, what="a send once the database is back")
            lease = await asyncio.wait_for(b.broker.recv("bob", 600, 10), 60)
            assert [m.body for m in lease.messages] == ["before", "after"]
            await b.broker.ack(lease)
            # wake-ups resume: a recv parked on B wakes on A's next commit
            parked = asyncio.create_task(b.broker.recv("bob", 600, 10))
            await eventually(lambda: "bob" in b.broker.wakeups.waiting())
            await eventually(lambda: b.storage.listening.is_set(), timeout=60)  # type: ignore[attr-defined]
            await a.broker.send("operator", "bob", "woken")
            lease = await asyncio.wait_for(parked, 60)
            assert [m.body for m in lease.messages] == ["woken"]
