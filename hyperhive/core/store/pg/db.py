"""`PgDb`: a psycopg 3 async connection pool with the write/read discipline the stores need.

Invariants:
- Every write is `fn(conn)` in one explicit transaction (BEGIN ... COMMIT on an autocommit
  connection). Its `on_commit(value)` runs synchronously right after COMMIT returns, in the
  same task step, and the write runs in its own task shielded from the caller's cancellation,
  so a committed write always reaches its hook (the broker's unread index).
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
from typing import Any, TypeVar

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
        self._tasks: set[asyncio.Task[Any]] = set()

    async def open(self) -> None:
        from hyperhive.core.store.pg.migrations import migrate

        try:
            await self.pool.open(wait=True, timeout=60)
        except PoolTimeout as exc:
            await self.pool.close()
            raise Unavailable(f"cannot reach the database: {exc}") from exc
        await self.write(migrate)

    async def aclose(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self.pool.close()

    async def write(
        self,
        fn: Callable[[Conn], Awaitable[T]],
        on_commit: Callable[[T], None] | None = None,
    ) -> T:
        task = asyncio.get_running_loop().create_task(self._write(fn, on_commit), name="pg-write")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return await asyncio.shield(task)

    async def _write(
        self, fn: Callable[[Conn], Awaitable[T]], on_commit: Callable[[T], None] | None
    ) -> T:
        for attempt in range(ATTEMPTS):
            try:
                value = await self._write_once(fn)
            except _Broken as exc:
                logger.warning(
                    "database connection lost (attempt %d): %s", attempt + 1, exc.__cause__
                )
                await self._drop_dead()
                continue
            if on_commit is not None:
                on_commit(value)
            return value
        raise Unavailable("the database is unavailable (connection lost); try again")

    async def _write_once(self, fn: Callable[[Conn], Awaitable[T]]) -> T:
        try:
            async with self.pool.connection() as conn:
                committing = False
                try:
                    await conn.execute("BEGIN")
                    value = await fn(conn)
                    committing = True
                    await conn.execute("COMMIT")
                    return value
                except psycopg.OperationalError as exc:
                    if conn.broken and not committing:
                        raise _Broken() from exc
                    raise Unavailable(f"the database failed: {exc}") from exc
                except BaseException:
                    if not conn.broken:
                        await asyncio.shield(_rollback(conn))
                    raise
        except PoolTimeout as exc:
            raise Unavailable(f"the database is unavailable: {exc}") from exc
        except psycopg.DataError as exc:
            raise BadRequest(f"the database refused a value: {exc}") from exc

    async def _drop_dead(self) -> None:
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
                await self._drop_dead()
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
