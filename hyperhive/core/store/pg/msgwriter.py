"""`MessageWriter`: the broker's hot writes on PostgreSQL — sends (INSERT + NOTIFY) and acks
(UPDATE delivered_at) — as ONE statement per cycle, in autocommit (a statement is its own
transaction: one round trip, one COMMIT), on a connection the writer keeps while busy.

Why not the generic group-commit writer (`PgDb.write`): that one wraps its jobs in BEGIN ...
COMMIT with pipeline mode, and psycopg sends and waits on the event loop per statement, so a
transaction of BEGIN, INSERT, UPDATE, COMMIT cost ~2.5x the client CPU and ~1.5x the server
CPU of the same work as one statement (`docs/benchmarks.md`, "Broker across nodes").

A cycle: every send and ack queued since the last cycle goes into `_STATEMENT` (data-modifying
CTEs: all run exactly once, atomically, whether or not the outer query reads them). While a
cycle runs, new requests queue for the next one (group commit). Acks alone wait up to
`ACK_LINGER` for a send to share their statement; a send never waits.

Invariants:
- A send resolves only after its row committed (delivered-after-write); its `on_commit` runs
  first, right after the statement's answer, in request order (the broker's unread index).
- If the combined statement fails for a reason of its own (a value PostgreSQL refuses), the
  acks and then each send are run alone, so only the request at fault fails.
- A connection found dead BEFORE the statement was sent (the database restarted: the pool's
  idle connections hold an EOF) is dropped and the cycle retried on a fresh one: nothing ran.
  One that broke after the statement was sent may or may not have committed: its requests
  fail with `Unavailable` (the client's retry makes it at-least-once, as on sqlite).
- Each request resolves exactly once; a caller's cancellation never un-knows a write.
"""

from __future__ import annotations

import asyncio
import logging
import select
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from psycopg.rows import tuple_row
from psycopg_pool import PoolTimeout

from hyperhive.core.records import Message, NewMessage
from hyperhive.core.store.pg.db import ATTEMPTS, Conn, PgDb, translate
from hyperhive.errors import Unavailable

logger = logging.getLogger(__name__)

CHANNEL = "hive_messages"

# The acks, then the inserts with one NOTIFY per row (sent at COMMIT). The payload carries
# the row (`origin, recipient, id, generation, sender, kind, sent_at, +trace_parent or -,
# body`, newline-separated, the body last) so the receiving node indexes it without a read
# (`messages.parse_payload`); a row that does not fit PostgreSQL's 8,000-byte payload (or has
# a newline where no field may hold one) notifies only `origin, recipient` (dropped index,
# re-read). Identical short payloads are folded into one by PostgreSQL. Rows come back in id
# order, which is the order of the input (ids are taken in ORDER BY t.n order).
_STATEMENT = (
    "WITH ack AS (UPDATE messages SET delivered_at = u.at"
    " FROM unnest(%(ai)s::bigint[], %(aa)s::text[]) AS u(id, at)"
    " WHERE messages.id = u.id AND messages.delivered_at IS NULL),"
    " ins AS (INSERT INTO messages(sender, recipient, body, kind, sent_at,"
    " recipient_generation, trace_parent)"
    " SELECT t.s, t.r, t.b, t.k, t.a,"
    " COALESCE((SELECT generation FROM agents WHERE name = t.r), 0), t.tp"
    " FROM unnest(%(s)s::text[], %(r)s::text[], %(b)s::text[], %(k)s::text[], %(a)s::text[],"
    " %(tp)s::text[]) WITH ORDINALITY AS t(s, r, b, k, a, tp, n) ORDER BY t.n"
    " RETURNING id, sender, recipient, body, kind, sent_at, recipient_generation, trace_parent)"
    " SELECT ins.id, ins.recipient_generation, ins.recipient, pg_notify(%(ch)s,"
    " CASE WHEN octet_length(p.full) < 8000 AND strpos(concat(ins.sender, ins.recipient,"
    " ins.kind, ins.sent_at, ins.trace_parent), chr(10)) = 0 THEN p.full"
    " ELSE %(o)s || chr(10) || ins.recipient END)::text"
    " FROM ins, LATERAL (SELECT concat_ws(chr(10), %(o)s::text, ins.recipient, ins.id,"
    " ins.recipient_generation, ins.sender, ins.kind, ins.sent_at,"
    " COALESCE('+' || ins.trace_parent, '-'), ins.body) AS full) p ORDER BY ins.id"
)

OnCommit = Callable[[list[Message]], None] | None
# An ack-only cycle waits this long for a send to ride along with (a send never waits): an
# ack is not on anyone's critical path (the client already has its messages; losing the write
# only means a redelivery), and a statement saved is a COMMIT saved.
ACK_LINGER = 0.005


class _Send:
    __slots__ = ("at", "fut", "msgs", "on_commit")

    def __init__(
        self, msgs: list[NewMessage], at: str, on_commit: OnCommit, fut: asyncio.Future[Any]
    ) -> None:
        self.msgs = msgs
        self.at = at
        self.on_commit = on_commit
        self.fut = fut


class _Ack:
    __slots__ = ("at", "fut", "ids")

    def __init__(self, ids: list[int], at: str, fut: asyncio.Future[Any]) -> None:
        self.ids = ids
        self.at = at
        self.fut = fut


class _DeadBeforeSend(Exception):
    """The connection was found dead before the statement went out: nothing ran."""


class _Ambiguous(Exception):
    """The connection broke after the statement went out: it may have committed."""


class MessageWriter:
    def __init__(self, db: PgDb, origin: str) -> None:
        self.db = db
        self.origin = origin
        self._sends: list[_Send] = []
        self._acks: list[_Ack] = []
        self._task: asyncio.Task[None] | None = None
        self._send_came: asyncio.Future[None] | None = None  # set by a send while acks linger
        self.ack_linger = ACK_LINGER

    async def insert(self, msgs: list[NewMessage], at: str, on_commit: OnCommit) -> list[Message]:
        fut = self._future()
        self._sends.append(_Send(msgs, at, on_commit, fut))
        if self._send_came is not None:
            _resolve(self._send_came)
        return await asyncio.shield(fut)  # a cancelled caller does not un-know the insert

    async def ack(self, ids: list[int], at: str) -> None:
        fut = self._future()
        self._acks.append(_Ack(ids, at, fut))
        await asyncio.shield(fut)

    def _future(self) -> asyncio.Future[Any]:
        if self.db.closed:
            raise Unavailable("the database is closed")
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._loop(), name="pg-messages")
            self.db.track(self._task)
        return loop.create_future()

    async def _loop(self) -> None:
        while self._sends or self._acks:
            await asyncio.sleep(0)  # let this loop pass's requests join
            if not self._sends and self.ack_linger > 0:
                await self._linger()
            sends, self._sends = self._sends, []
            acks, self._acks = self._acks, []
            try:
                await self._cycle(sends, acks)
            except BaseException as exc:  # never leave a caller waiting
                err = exc if isinstance(exc, Exception) else Unavailable(repr(exc))
                _fail([*sends, *acks], err)
                if not isinstance(exc, Exception):
                    raise

    async def _linger(self) -> None:
        """Only acks are queued: give a send `ack_linger` seconds to come and carry them."""
        loop = asyncio.get_running_loop()
        came = self._send_came = loop.create_future()
        timer = loop.call_later(self.ack_linger, _resolve, came)
        try:
            await came
        finally:
            timer.cancel()
            self._send_came = None

    async def _cycle(self, sends: list[_Send], acks: list[_Ack]) -> None:
        try:
            rows = await self._run(sends, acks)
        except Unavailable as exc:
            _fail([*sends, *acks], exc)
            return
        except Exception as exc:
            if len(sends) + len(acks) == 1 or (not sends and acks):
                _fail([*sends, *acks], translate(exc))
                return
            # only the request at fault fails: the acks together, then each send alone
            if acks:
                await self._cycle([], acks)
            for one in sends:
                await self._cycle([one], [])
            return
        self._committed(sends, acks, rows)

    async def _run(self, sends: list[_Send], acks: list[_Ack]) -> list[tuple[Any, ...]]:
        flat = [(m, s.at) for s in sends for m in s.msgs]
        ack_pairs = [(i, a.at) for a in acks for i in a.ids]
        params = {
            "ai": [i for i, _ in ack_pairs],
            "aa": [at for _, at in ack_pairs],
            "s": [m.sender for m, _ in flat],
            "r": [m.recipient for m, _ in flat],
            "b": [m.body for m, _ in flat],
            "k": [m.kind for m, _ in flat],
            "a": [at for _, at in flat],
            "tp": [m.trace_parent for m, _ in flat],
            "ch": CHANNEL,
            "o": self.origin,
        }
        for attempt in range(ATTEMPTS):
            try:
                async with self.db.pool.connection() as conn:
                    return await _execute(conn, params)
            except _DeadBeforeSend as exc:
                logger.warning(
                    "database connection lost (attempt %d): %s", attempt + 1, exc.__cause__
                )
                await self.db.drop_dead()
            except _Ambiguous as exc:
                await self.db.drop_dead()
                raise Unavailable(f"the database failed during COMMIT: {exc.__cause__}") from exc
            except PoolTimeout as exc:
                raise Unavailable(f"the database is unavailable: {exc}") from exc
        raise Unavailable("the database is unavailable (connection lost); try again")

    def _committed(self, sends: list[_Send], acks: list[_Ack], rows: list[tuple[Any, ...]]) -> None:
        it = iter(rows)
        for s in sends:
            mine = []
            for m in s.msgs:
                mid, gen, recipient, _ = next(it)
                assert recipient == m.recipient  # rows come back in input order
                mine.append(
                    Message(
                        mid, m.sender, m.recipient, m.body, m.kind, s.at, None, gen, m.trace_parent
                    )
                )
            if s.on_commit is not None:
                try:
                    s.on_commit(mine)
                except Exception:
                    logger.exception("on_commit hook failed")
            if not s.fut.done():
                s.fut.set_result(mine)
        for a in acks:
            if not a.fut.done():
                a.fut.set_result(None)


async def _execute(conn: Conn, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    if _dead(conn):
        await conn.close()  # the pool discards a closed connection
        raise _DeadBeforeSend() from psycopg.OperationalError("connection closed while idle")
    cur = conn.cursor(row_factory=tuple_row)
    try:
        await cur.execute(_STATEMENT, params)
    except psycopg.OperationalError as exc:
        if conn.broken:
            raise _Ambiguous() from exc
        raise
    return await cur.fetchall()


def _dead(conn: Conn) -> bool:
    """An idle connection has nothing to read: if its socket is readable, the server closed
    it or sent an error (a FATAL on termination) while it sat in the pool. One zero-timeout
    poll, no round trip."""
    if conn.closed:
        return True
    try:
        ready, _, _ = select.select([conn.pgconn.socket], [], [], 0)
    except (OSError, ValueError, psycopg.OperationalError):
        return True
    return bool(ready)


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def _fail(items: Sequence[_Send | _Ack], exc: Exception) -> None:
    for it in items:
        if not it.fut.done():
            it.fut.set_exception(exc)
