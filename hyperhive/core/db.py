"""SQLite access with exactly one writer.

Invariants:
- One write connection, owned by one thread (`hive-db-writer`). Every write is a function
  `fn(conn)` queued to it; the thread runs all queued functions in ONE transaction (group
  commit), each inside its own SAVEPOINT so a failing function rolls back only itself and gets
  its exception, while the others commit. A write's future resolves only after COMMIT, so an
  acknowledged write is durable against a process crash (WAL, synchronous=NORMAL).
- Reads run on their own connections in a small thread pool (WAL lets them run beside the
  writer) and never write.
- Migrations are ordered, named functions recorded in `schema_migrations`; they run on open,
  on the writer, before anything else.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

from hyperhive.errors import Unavailable

logger = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Migration:
    name: str
    apply: Callable[[sqlite3.Connection], None]


def _connect(path: Path, *, readonly: bool) -> sqlite3.Connection:
    if readonly:
        conn = sqlite3.connect(
            f"file:{path}?mode=ro", uri=True, check_same_thread=False, isolation_level=None
        )
    else:
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA busy_timeout = 5000")
    if not readonly:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
    return conn


def execute_script(conn: sqlite3.Connection, sql: str) -> None:
    """Run `;`-separated statements inside the current transaction (unlike `executescript`,
    which commits first). Statements must not contain `;` inside literals or triggers."""
    for stmt in sql.split(";"):
        if stmt.strip():
            conn.execute(stmt)


def run_migrations(conn: sqlite3.Connection, migrations: Sequence[Migration]) -> list[str]:
    """Apply the migrations not yet recorded, in order. Returns the names applied."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " name TEXT PRIMARY KEY, applied_at TEXT NOT NULL DEFAULT (datetime('now')))"
    )
    done = {r[0] for r in conn.execute("SELECT name FROM schema_migrations")}
    applied = []
    for mig in migrations:
        if mig.name in done:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            mig.apply(conn)
            conn.execute("INSERT INTO schema_migrations(name) VALUES (?)", (mig.name,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        applied.append(mig.name)
    return applied


_STOP = object()


class Database:
    """An sqlite database with one writer thread and pooled readers. Async context manager."""

    def __init__(
        self, path: Path, migrations: Sequence[Migration] = (), *, readers: int = 2
    ) -> None:
        self.path = path
        self._migrations = list(migrations)
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._readers = concurrent.futures.ThreadPoolExecutor(
            max_workers=readers, thread_name_prefix="hive-db-reader"
        )
        self._local = threading.local()
        self._reader_conns: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self.applied_migrations: list[str] = []

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def open(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        ready: concurrent.futures.Future[list[str]] = concurrent.futures.Future()
        self._writer = threading.Thread(
            target=self._writer_main, args=(ready,), name="hive-db-writer", daemon=True
        )
        self._writer.start()
        self.applied_migrations = await asyncio.wrap_future(ready)
        if self.applied_migrations:
            logger.info(
                "migrated %s: %s",
                self.path.name,
                ", ".join(self.applied_migrations),
                extra={"action": "db_migrate"},
            )

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._writer is not None:
            self._queue.put(_STOP)
            await asyncio.to_thread(self._writer.join)
        self._readers.shutdown(wait=True)
        with self._lock:
            for conn in self._reader_conns:
                conn.close()
            self._reader_conns.clear()

    # -- writer -------------------------------------------------------------------------------

    def _writer_main(self, ready: concurrent.futures.Future[list[str]]) -> None:
        try:
            conn = _connect(self.path, readonly=False)
            applied = run_migrations(conn, self._migrations)
        except BaseException as exc:
            ready.set_exception(exc)
            return
        ready.set_result(applied)
        try:
            while True:
                item = self._queue.get()
                batch = [item]
                while True:  # drain: everything queued now commits together
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                stop = any(b is _STOP for b in batch)
                jobs = [b for b in batch if b is not _STOP]
                if jobs:
                    self._run_batch(conn, jobs)
                if stop:
                    break
        finally:
            conn.close()

    def _run_batch(self, conn: sqlite3.Connection, jobs: list[Any]) -> None:
        results: list[tuple[asyncio.Future[Any], bool, Any]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for fn, fut in jobs:
                conn.execute("SAVEPOINT job")
                try:
                    value = fn(conn)
                except BaseException as exc:
                    conn.execute("ROLLBACK TO job")
                    conn.execute("RELEASE job")
                    results.append((fut, False, exc))
                else:
                    conn.execute("RELEASE job")
                    results.append((fut, True, value))
            conn.execute("COMMIT")
        except BaseException as exc:  # commit failed: nobody's write happened
            logger.exception("write batch failed", extra={"action": "db_write_failed"})
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            results = [(fut, False, exc) for _, fut in jobs]
        for fut, ok, value in results:
            self._resolve(fut, ok, value)

    def _resolve(self, fut: asyncio.Future[Any], ok: bool, value: Any) -> None:
        def done() -> None:
            if fut.cancelled():
                return
            if ok:
                fut.set_result(value)
            else:
                fut.set_exception(value)

        loop = fut.get_loop()
        if not loop.is_closed():
            loop.call_soon_threadsafe(done)

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(conn)` on the writer inside a transaction; resolves after COMMIT."""
        if self._closed:
            raise Unavailable("database is closed")
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put((fn, fut))
        # shield: a cancelled caller must not un-know a write that will still commit
        return await asyncio.shield(fut)

    # -- readers ------------------------------------------------------------------------------

    def _reader_conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = _connect(self.path, readonly=True)
            self._local.conn = conn
            with self._lock:
                self._reader_conns.append(conn)
        return conn

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(conn)` on a read-only connection."""
        if self._closed:
            raise Unavailable("database is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, lambda: fn(self._reader_conn()))

    def schema(self) -> list[tuple[str, str]]:
        """(name, sql) of every table and index, for the fresh-vs-migrated schema test."""
        conn = _connect(self.path, readonly=True)
        try:
            rows = conn.execute(
                "SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name"
            ).fetchall()
            return [(r[0], r[1]) for r in rows]
        finally:
            conn.close()
