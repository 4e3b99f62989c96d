"""Wake-ups across processes on one PostgreSQL database (LISTEN/NOTIFY, no polling): a recv
parked on hive B wakes when hive A — another Hive object, or another `hive serve` process —
commits a message for it. Also: the wake-up channel survives the database cutting every
connection (`pg_terminate_backend`), and nothing committed is lost meanwhile."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from hyperhive.assembly import build_hive
from hyperhive.config import HiveConfig
from hyperhive.core.store.pg.storage import PgStorage
from hyperhive.paths import HivePaths
from tests.support.daemon import DaemonProcess, hive_cli
from tests.support.postgres import PgCluster
from tests.support.waiting import eventually

WITHOUT = ("dashboard", "lifecycle")


async def test_parked_recv_on_b_wakes_when_a_commits(
    short_tmp: Path, hive_config: HiveConfig, pg_url: Callable[[], str]
) -> None:
    url = pg_url()
    a_paths, b_paths = HivePaths(short_tmp / "a"), HivePaths(short_tmp / "b")
    async with build_hive(a_paths, hive_config, database=url, without=WITHOUT) as a:
        await a.spawn("bob")
        async with build_hive(b_paths, hive_config, database=url, without=WITHOUT) as b:
            assert b.registry.get("bob") is not None  # one hive: B sees A's agent
            parked = asyncio.create_task(b.broker.recv("bob", 600, 10))
            await eventually(lambda: "bob" in b.broker.wakeups.waiting())
            assert not parked.done()
            await a.broker.send("operator", "bob", "across")
            lease = await asyncio.wait_for(parked, 60)  # a hang guard: it wakes at once
            assert [m.body for m in lease.messages] == ["across"]
            await b.broker.ack(lease)
            assert await a.broker.unread("bob") == 0


async def test_wakeups_resume_after_the_database_cuts_every_connection(
    short_tmp: Path, hive_config: HiveConfig, pg_cluster: PgCluster
) -> None:
    url = pg_cluster.new_database()
    dbname = urlsplit(url).path.lstrip("/")
    a_paths, b_paths = HivePaths(short_tmp / "a"), HivePaths(short_tmp / "b")
    async with build_hive(a_paths, hive_config, database=url, without=WITHOUT) as a:
        await a.spawn("bob")
        async with build_hive(b_paths, hive_config, database=url, without=WITHOUT) as b:
            storage = b.storage
            assert isinstance(storage, PgStorage)
            before = storage.reconnects
            await asyncio.to_thread(pg_cluster.terminate_backends, dbname)
            # while B's channel may be down, A commits (its pool reconnects for the write)
            await eventually(lambda: storage.reconnects > before)
            await a.broker.send("operator", "bob", "while away")
            lease = await asyncio.wait_for(b.broker.recv("bob", 600, 10), 60)
            assert [m.body for m in lease.messages] == ["while away"]
            await b.broker.ack(lease)
            # and a fresh park wakes again through the re-established channel
            parked = asyncio.create_task(b.broker.recv("bob", 600, 10))
            await eventually(lambda: "bob" in b.broker.wakeups.waiting())
            await a.broker.send("operator", "bob", "after")
            lease = await asyncio.wait_for(parked, 60)
            assert [m.body for m in lease.messages] == ["after"]


async def test_a_hive_serve_process_wakes_an_in_process_hive(
    short_tmp: Path, hive_config: HiveConfig, pg_url: Callable[[], str]
) -> None:
    url = pg_url()
    b_paths = HivePaths(short_tmp / "b")
    d = DaemonProcess(short_tmp / "a", "--db", url)
    await asyncio.to_thread(d.start)
    try:
        r = await asyncio.to_thread(hive_cli, d, "spawn", "bob")
        assert r.returncode == 0, r.stderr
        async with build_hive(b_paths, hive_config, database=url, without=WITHOUT) as b:
            parked = asyncio.create_task(b.broker.recv("bob", 600, 10))
            await eventually(lambda: "bob" in b.broker.wakeups.waiting())
            r = await asyncio.to_thread(hive_cli, d, "send", "bob", "from another process")
            assert r.returncode == 0, r.stderr
            lease = await asyncio.wait_for(parked, 60)
            assert [m.body for m in lease.messages] == ["from another process"]
    finally:
        await asyncio.to_thread(d.stop)
