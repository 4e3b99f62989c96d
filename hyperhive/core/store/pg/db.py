"""`PgDb`: a psycopg 3 async connection pool with the write/read discipline the stores need.

Invariants:
- Group commit, as the sqlite `Database`: every write is `fn(conn)` queued to one writer task
  (`pg-writer`), which runs everything queued since its last pass in ONE transaction
  (BEGIN ... COMMIT on an autocommit connection): one WAL flush for many writes. If a job
  raises, the transaction is rolled back and each job runs alone, so only that one fails; a
  job may therefore run twice and must have no effect outside the connection. Hooks
  `on_commit(value)` run synchronously right after COMMIT, in queue order, before any caller
  resumes, and a caller's cancellation never un-knows a write (the future is shielded), so a
  committed write always reaches its hook (the broker's unread index). Reads run in parallel
  on the pool's other connections.
- A write that failed because its connection broke BEFORE COMMIT was sent had no effect and is
  retried on a fresh connection (a database restart leaves the pool full of dead connections);
  one that broke during COMMIT may or may not have committed, so it fails with `Unavailable`
  (the client's retry makes it at-least-once, as on sqlite). Reads are retried the same way.
- Every database failure the caller cannot act on becomes `Unavailable` (the one error shape);
  values PostgreSQL cannot store (a NUL character in text) become `BadRequest`. Nothing here
  crashes the daemon: the pool reconnects in the background while the database is away.
- Migrations (`migrations.py`) run once in `open`, in one transaction under a
  `pg_advisory_xact_lock`, so any number of nodes may start at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from hyperhive.errors import BadRequest, Unavailable

logger = logging.getLogger(__name__)

T = TypeVar("T")
Conn = psycopg.AsyncConnection[dict[str, Any]]
ATTEMPTS = 3
POOL_MAX = 8
CONNECT_TIMEOUT = 10.0  # waiting for a pooled connection while the database is away


class _Broken(Exception):
    """The connection broke before COMMIT was sent: safe to run again."""


class _JobFailed(Exception):
    def __init__(self, error: Exception) -> None:
        super().__init__(repr(error))
        self.error = error


def translate(exc: Exception) -> Exception:
    """A database error the caller cannot act on → `Unavailable`; a value PostgreSQL cannot
    store → `BadRequest`; the job's own errors (NotFound, Conflict, ...) as they are."""
    if isinstance(exc, psycopg.DataError):
        return BadRequest(f"the database refused a value: {exc}")
    if isinstance(exc, psycopg.OperationalError):
        return Unavailable(f"the database failed: {exc}")
    return exc


_Job = tuple[
    Callable[["Conn"], Awaitable[Any]], "asyncio.Future[Any]", Callable[[Any], None] | None
]
BATCH_MAX = 256


class PgDb:
    def __init__(self, url: str, *, max_size: int = POOL_MAX) -> None:
        self.url = url
        self.pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
            url,
            min_size=1,
            max_size=max_size,
            open=False,
            timeout=CONNECT_TIMEOUT,
            kwargs={"autocommit": True, "row_factory": dict_row},
            name="hive-pg",
            reconnect_timeout=0,  # keep trying while the database is away (never give up)
        )
        self._pending: list[_Job] = []
        self._writer: asyncio.Task[None] | None = None
        self._side: set[asyncio.Task[None]] = set()  # other writers' tasks (`track`)
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def track(self, task: asyncio.Task[None]) -> None:
        """Another writer's task (`msgwriter.py`): `aclose` waits for it before the pool goes."""
        self._side.add(task)
        task.add_done_callback(self._side.discard)

    async def open(self) -> None:
        from hyperhive.core.store.pg.migrations import migrate

        try:
            await self.pool.open(wait=True, timeout=60)
        except PoolTimeout as exc:
            await self.pool.close()
            raise Unavailable(f"cannot reach the database: {exc}") from exc
        try:  # not through the writer: a migration is a multi-statement script (no pipeline)
            async with self.pool.connection() as conn, conn.transaction():
                await migrate(conn)
        except BaseException:
            await self.pool.close()
            raise

    async def aclose(self) -> None:
        self._closed = True
        while (self._writer is not None and not self._writer.done()) or self._side:
            await asyncio.gather(
                *[t for t in [self._writer, *self._side] if t is not None],
                return_exceptions=True,
            )
        await self.pool.close()

    async def write(
        self,
        fn: Callable[[Conn], Awaitable[T]],
        on_commit: Callable[[T], None] | None = None,
    ) -> T:
        """Run `fn(conn)` in a transaction; resolves after COMMIT. Writes queued while one
        batch commits go into the next one (group commit: one WAL flush for many writes)."""
        # shield: a cancelled caller must not un-know a write that will still commit
        return cast(T, await asyncio.shield(self.enqueue(fn, on_commit)))

    def enqueue(
        self,
        fn: Callable[[Conn], Awaitable[T]],
        on_commit: Callable[[T], None] | None = None,
    ) -> asyncio.Future[T]:
        """`write` without waiting: the future resolves after COMMIT (or with the error)."""
        if self._closed:
            raise Unavailable("the database is closed")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self._pending.append((fn, fut, on_commit))
        if self._writer is None or self._writer.done():
            self._writer = loop.create_task(self._write_loop(), name="pg-writer")
        return fut

    async def _write_loop(self) -> None:
        while self._pending:
            await asyncio.sleep(0)  # let the writes of this loop pass join the batch
            batch, self._pending = self._pending[:BATCH_MAX], self._pending[BATCH_MAX:]
            try:
                await self._run_batch(batch)
            except BaseException as exc:  # never leave a caller waiting
                for _, fut, _ in batch:
                    if not fut.done():
                        fut.set_exception(
                            exc if isinstance(exc, Exception) else Unavailable(repr(exc))
                        )
                if not isinstance(exc, Exception):
                    raise

    async def _run_batch(self, jobs: list[_Job]) -> None:
        results: list[tuple[bool, Any]] | None = None
        for attempt in range(ATTEMPTS):
            try:
                results = await self._commit_batch(jobs)
                break
            except _Broken as exc:
                logger.warning(
                    "database connection lost (attempt %d): %s", attempt + 1, exc.__cause__
                )
                await self.drop_dead()
        if results is None:
            results = [
                (False, Unavailable("the database is unavailable (connection lost); try again"))
            ] * len(jobs)
        for (_, _, on_commit), (ok, value) in zip(jobs, results, strict=True):
            if ok and on_commit is not None:
                try:
                    on_commit(value)
                except Exception:
                    logger.exception("on_commit hook failed", extra={"action": "db_on_commit"})
        for (_, fut, _), (ok, value) in zip(jobs, results, strict=True):
            if fut.done():
                continue
            if ok:
                fut.set_result(value)
            else:
                fut.set_exception(value)

    async def _commit_batch(self, jobs: list[_Job]) -> list[tuple[bool, Any]]:
        """All jobs in one transaction; if one fails, each alone (a job may run twice: it has
        no effect outside the connection). `_Broken` if the connection broke before COMMIT."""
        try:
            async with self.pool.connection() as conn:
                if len(jobs) > 1:
                    try:
                        values = await self._transaction(conn, [job[0] for job in jobs])
                        return [(True, v) for v in values]
                    except _JobFailed:
                        pass
                out: list[tuple[bool, Any]] = []
                for job in jobs:
                    try:
                        [value] = await self._transaction(conn, [job[0]])
                        out.append((True, value))
                    except _JobFailed as failed:
                        out.append((False, translate(failed.error)))
                return out
        except PoolTimeout as exc:
            err = Unavailable(f"the database is unavailable: {exc}")
            return [(False, err)] * len(jobs)

    async def _transaction(
        self, conn: Conn, fns: list[Callable[[Conn], Awaitable[Any]]]
    ) -> list[Any]:
        committing = False
        try:
            # pipeline mode: BEGIN travels with the first statement, COMMIT with the last
            # (a round trip is what a write costs on a busy host, not the statement)
            async with conn.pipeline():
                await conn.execute("BEGIN")
                values = [await fn(conn) for fn in fns]
                committing = True
                await conn.execute("COMMIT")
            return values
        except psycopg.OperationalError as exc:
            if conn.broken and not committing:
                raise _Broken() from exc
            if conn.broken:
                raise _JobFailed(Unavailable(f"the database failed during COMMIT: {exc}")) from exc
            await _rollback(conn)
            raise _JobFailed(exc) from exc
        except Exception as exc:
            if not conn.broken:
                await _rollback(conn)
            raise _JobFailed(exc) from exc

    async def drop_dead(self) -> None:
        """Check the pool's idle connections (the database restarted: they are dead)."""
        await _drop_dead_conns(self.pool)

    async def read(self, fn: Callable[[Conn], Awaitable[T]]) -> T:
        for _ in range(ATTEMPTS):
            broken = False
            try:
                async with self.pool.connection() as conn:
                    try:
                        return await fn(conn)
                    except psycopg.OperationalError as exc:
                        if conn.broken:
                            broken = True
                        else:
                            raise Unavailable(f"the database failed: {exc}") from exc
            except PoolTimeout as exc:
                raise Unavailable(f"the database is unavailable: {exc}") from exc
            except psycopg.DataError as exc:
                raise BadRequest(f"the database refused a value: {exc}") from exc
            if broken:
                await self.drop_dead()
        raise Unavailable("the database is unavailable (connection lost); try again")


async def _drop_dead_conns(pool: AsyncConnectionPool[Conn]) -> None:
    try:
        await pool.check()  # the database came back: every idle connection is probably dead
    except Exception:
        logger.exception("checking the pool failed")


async def _rollback(conn: Conn) -> None:
    try:
        await conn.execute("ROLLBACK")
    except psycopg.Error:
        pass
