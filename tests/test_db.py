"""`Database`: one writer with group commit. A batch commits as one transaction; a failing job
in a batch gets its own exception while the others commit; on_commit hooks run for committed
jobs only, before their callers resume. Real sqlite files."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from hyperhive.core.hive import Hive
from hyperhive.core.tasks import Supervisor
from hyperhive.db import Database, Migration, connect_foreign_ro
from hyperhive.errors import Unavailable
from tests.support.waiting import eventually


def _schema(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER NOT NULL)")


def _insert(k: str, v: int) -> Callable[[sqlite3.Connection], int]:
    def fn(conn: sqlite3.Connection) -> int:
        conn.execute("INSERT INTO t(k, v) VALUES (?, ?)", (k, v))
        return v

    return fn


def _partial_then_fail(conn: sqlite3.Connection) -> None:
    conn.execute("INSERT INTO t(k, v) VALUES ('half', 1)")  # must be rolled back
    raise ValueError("refused by the job")


async def _rows(db: Database) -> dict[str, int]:
    return await db.read(lambda c: {r["k"]: r["v"] for r in c.execute("SELECT k, v FROM t")})


async def test_a_failing_job_in_a_batch_fails_alone(short_tmp: Path) -> None:
    async with Database(short_tmp / "t.sqlite", [Migration("0001", _schema)]) as db:
        committed: list[int] = []
        # queued in one loop pass: one batch
        writes = [
            asyncio.ensure_future(db.write(_insert("a", 1), on_commit=committed.append)),
            asyncio.ensure_future(
                db.write(_partial_then_fail, on_commit=lambda _: committed.append(-1))
            ),
            asyncio.ensure_future(db.write(_insert("b", 2), on_commit=committed.append)),
            asyncio.ensure_future(db.write(_insert("a", 9))),  # a duplicate key
        ]
        results = await asyncio.gather(*writes, return_exceptions=True)
        assert results[0] == 1 and results[2] == 2
        assert isinstance(results[1], ValueError)
        assert isinstance(results[3], sqlite3.IntegrityError)
        assert await _rows(db) == {"a": 1, "b": 2}  # nothing of the failed jobs
        assert committed == [1, 2]  # hooks only for what committed


async def test_a_clean_batch_is_one_commit_and_hooks_run_before_callers(short_tmp: Path) -> None:
    async with Database(short_tmp / "t.sqlite", [Migration("0001", _schema)]) as db:
        seen_by_hook: list[dict[str, int]] = []
        before = db._commits

        async def one(i: int) -> None:
            await db.write(_insert(f"k{i}", i), on_commit=lambda v: seen_by_hook.append({}))
            assert len(seen_by_hook) >= 1  # the hook ran before this caller resumed

        await asyncio.gather(*(one(i) for i in range(20)))
        assert db._commits - before == 1
        assert len(seen_by_hook) == 20
        assert len(await _rows(db)) == 20


async def test_writes_after_close_are_refused(short_tmp: Path) -> None:
    db = Database(short_tmp / "t.sqlite", [Migration("0001", _schema)])
    async with db:
        pass
    with pytest.raises(Exception, match="closed"):
        await db.write(_insert("x", 1))


async def test_open_retries_a_moment_of_read_only_side_files(
    short_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A root reader that just created the -shm owns it for an instant: the owner's open
    retries instead of dying with "attempt to write a readonly database"."""
    import hyperhive.db as db_mod

    real = db_mod.run_migrations
    calls = 0

    def flaky(conn: sqlite3.Connection, migs: object) -> list[str]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise sqlite3.OperationalError("attempt to write a readonly database")
        return real(conn, migs)  # type: ignore[arg-type]

    monkeypatch.setattr(db_mod, "run_migrations", flaky)
    async with Database(short_tmp / "t.sqlite", [Migration("0001", _schema)]) as db:
        await db.write(_insert("k", 1))
    assert calls == 2

    def broken(conn: sqlite3.Connection, migs: object) -> list[str]:
        raise sqlite3.OperationalError("no such table: nowhere")

    monkeypatch.setattr(db_mod, "run_migrations", broken)
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        async with Database(short_tmp / "u.sqlite", [Migration("0001", _schema)]):
            pass


def _open_of(path: Path) -> list[str]:
    """This process's open files that are `path` or one of its side files."""
    return [f for f in _open_files() if f.startswith(str(path))]


def _side_files(path: Path) -> list[str]:
    return [s for s in ("-shm", "-wal") if path.with_name(path.name + s).exists()]


async def test_no_connection_outlives_aclose(
    short_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seen on main (~1 run in 20 under load): the PASSIVE checkpoint's cursor came back from
    its thread unfinished; while anything still referenced it (the worker thread's frame, the
    executor future's reference cycle until a collection), `conn.close()` left a zombie
    connection holding the database, its -wal and -shm open after `aclose`, and the last close
    could not remove them. Here every value a thread hands back is kept past `aclose`: what
    a checkpoint returns must hold nothing open."""
    real = asyncio.to_thread
    kept: list[object] = []

    async def keeping(fn: Callable[..., object], /, *args: object) -> object:
        value = await real(fn, *args)
        kept.append(value)
        return value

    monkeypatch.setattr(asyncio, "to_thread", keeping)
    path = short_tmp / "t.sqlite"
    async with Database(path, [Migration("0001", _schema)]) as db:
        await db.write(_insert("k", 1))  # so the closing checkpoint tick is a PASSIVE one
        assert _open_of(path)
    assert len(kept) >= 2  # the checkpoint connection and at least one checkpoint
    assert _open_of(path) == []
    assert _side_files(path) == []  # the last close checkpointed and removed them


async def test_a_foreign_reader_never_creates_side_files(short_tmp: Path) -> None:
    path = short_tmp / "store.sqlite"
    async with Database(path, [Migration("0001", _schema)]) as db:
        await db.write(_insert("k", 1))
        conn = connect_foreign_ro(path)  # the owner has it open: -shm shared as usual
        assert [tuple(r) for r in conn.execute("SELECT k, v FROM t")] == [("k", 1)]
        conn.close()
    assert _side_files(path) == []  # the owner's last close removed them
    conn = connect_foreign_ro(path)
    assert [tuple(r) for r in conn.execute("SELECT k, v FROM t")] == [("k", 1)]
    conn.close()
    assert _side_files(path) == []  # a private copy: nothing created


def _blobs(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE b (id INTEGER PRIMARY KEY, v BLOB NOT NULL)")


def _insert_blob(size: int) -> Callable[[sqlite3.Connection], None]:
    def fn(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO b(v) VALUES (randomblob(?))", (size,))

    return fn


def _wal_size(path: Path) -> int:
    try:
        return path.with_name(path.name + "-wal").stat().st_size
    except FileNotFoundError:
        return 0


async def test_the_wal_is_truncated_once_writes_pause(short_tmp: Path) -> None:
    """Only PASSIVE checkpoints used to run: the WAL file kept its high-water size for as
    long as the daemon ran. Once idle, it goes back to nothing."""
    path = short_tmp / "t.sqlite"
    async with Database(path, [Migration("0001", _blobs)]) as db:
        for _ in range(64):
            await db.write(_insert_blob(16 * 1024))
        assert _wal_size(path) > 1024 * 1024
        await eventually(lambda: _wal_size(path) == 0, timeout=30, what="an idle truncation")
        assert await db.read(lambda c: c.execute("SELECT count(*) FROM b").fetchone()[0]) == 64


async def test_the_wal_shrinks_under_sustained_writes(short_tmp: Path) -> None:
    """Writes that never pause: the WAL must still be cut back once it passes its limit
    (before, a checkpoint never caught up and the file only grew)."""
    path = short_tmp / "t.sqlite"
    limit = 512 * 1024
    async with Database(
        path, [Migration("0001", _blobs)], checkpoint_interval=0.05, wal_limit_bytes=limit
    ) as db:
        peak = 0
        deadline = asyncio.get_running_loop().time() + 60
        while True:
            await db.write(_insert_blob(16 * 1024))
            size = _wal_size(path)
            if peak > limit and size < peak:
                break  # cut back while the writes go on
            peak = max(peak, size)
            assert asyncio.get_running_loop().time() < deadline, f"WAL only grew: {peak} bytes"


async def test_a_foreign_reader_follows_no_link(short_tmp: Path) -> None:
    """The agent owns its store's directory: links in place of the store or its side files
    are never followed (a root reader would write a linked `-shm`, or read a linked file)."""
    victim = short_tmp / "victim"
    victim.write_bytes(b"precious" * 100)
    path = short_tmp / "store.sqlite"
    async with Database(path, [Migration("0001", _schema)]) as db:
        await db.write(_insert("k", 1))
        shm = path.with_name(path.name + "-shm")
        shm.unlink()
        shm.symlink_to(victim)  # the owner keeps its mapping; a new reader would open the link
        conn = connect_foreign_ro(path)
        assert [tuple(r) for r in conn.execute("SELECT k, v FROM t")] == [("k", 1)]
        conn.close()
        assert victim.read_bytes() == b"precious" * 100
    other = short_tmp / "other.sqlite"
    other.symlink_to(path)
    with pytest.raises(sqlite3.OperationalError, match="unable to open"):
        connect_foreign_ro(other)


def _open_files() -> list[str]:
    targets = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            targets.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:  # the listing's own fd, closed by now
            continue
    return targets


def _break_connection(conn: sqlite3.Connection) -> None:
    conn.close()  # the writer's connection is gone: its next statement raises


async def test_a_dead_writer_fails_every_pending_write_and_tells_the_supervisor(
    short_tmp: Path,
) -> None:
    async with Supervisor("t") as tasks:
        db = Database(short_tmp / "w.sqlite", [Migration("0001", _schema)], tasks=tasks)
        async with db:
            await db.write(_insert("a", 1))
            breaking = asyncio.ensure_future(db.write(_break_connection))
            queued = asyncio.ensure_future(db.write(_insert("b", 2)))
            # wait_for guards against the old hang; it is not a timing assertion
            done = await asyncio.wait_for(
                asyncio.gather(breaking, queued, return_exceptions=True), 30
            )
            assert all(isinstance(r, Unavailable) for r in done), done
            with pytest.raises(Unavailable):
                await asyncio.wait_for(db.write(_insert("c", 3)), 30)
            await asyncio.wait_for(tasks.failed.wait(), 30)
            assert tasks.failure is not None


async def test_close_leaves_no_connection_behind(short_tmp: Path) -> None:
    """The checkpoint connection was opened on a thread the close could cancel mid-way: the
    thread then opened it after `aclose` and nobody closed it (a `-shm` reappeared)."""
    path = short_tmp / "c.sqlite"
    for i in range(10):
        async with Database(path, [Migration("0001", _schema)]) as db:
            await db.write(_insert(f"k{i}", i))
    await asyncio.get_running_loop().shutdown_default_executor()  # every thread has finished
    held = [t for t in _open_files() if t.startswith(str(path))]
    assert held == []
    for side in ("-shm", "-wal"):
        assert not path.with_name(path.name + side).exists()


async def test_the_daemon_stops_when_its_database_writer_dies(hive: Hive) -> None:
    with pytest.raises(Unavailable):
        await asyncio.wait_for(hive.db.write(_break_connection), 30)
    with pytest.raises(Unavailable, match="critical task died"):
        await asyncio.wait_for(hive.wait_stop_request(), 30)
