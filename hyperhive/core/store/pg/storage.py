"""`PgStorage`: the hive's stores on PostgreSQL plus the cross-process wake-up channel.

Wake-ups without polling: a dedicated autocommit connection runs `LISTEN hive_messages`
(`messages.CHANNEL`); each committed message notifies `origin\\n` + its row (or only its
recipient when the row does not fit a payload: `messages.parse_payload`). A notification from
another origin (another process or node) is handed to `on_remote_rows` callbacks (the broker
puts the row in its unread index and wakes the parked recv: no read) or, recipient only, to
`on_remote_messages` (the broker drops that recipient's index and wakes its parked recv).
Our own origin is skipped after one `partition` (the broker learnt of it via `on_commit`):
every node sees every message's notification, so that check stays cheap.

The listener reconnects with backoff when the database goes away; on every (re)connect after
the first it reports `None` ("anything may have changed": the broker reloads every inbox and
wakes every parked recv), because notifications sent while it was disconnected are lost.
It is a named task, watched as non-critical: the database away never stops the daemon.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import TYPE_CHECKING

import psycopg

from hyperhive.core.records import Message
from hyperhive.core.store.base import Storage
from hyperhive.core.store.pg.approvals import PgApprovalStore
from hyperhive.core.store.pg.budgets import PgBudgetStore
from hyperhive.core.store.pg.db import PgDb
from hyperhive.core.store.pg.followups import PgQuestionStore, PgReminderStore
from hyperhive.core.store.pg.messages import (
    SEP,
    PgAgentStore,
    PgMessageStore,
    parse_payload,
)
from hyperhive.core.store.pg.msgwriter import CHANNEL
from hyperhive.core.store.pg.permissions import PgPermissionStore
from hyperhive.core.store.pg.search import PgSearchStore
from hyperhive.errors import Unavailable

if TYPE_CHECKING:
    from hyperhive.db import TaskWatcher

logger = logging.getLogger(__name__)

RECONNECT_MIN = 0.05
RECONNECT_MAX = 2.0
LISTEN_START_TIMEOUT = 60.0


class PgStorage(Storage):
    kind = "postgresql"

    def __init__(self, url: str, tasks: TaskWatcher | None = None) -> None:
        super().__init__()
        self.url = url
        self.origin = uuid.uuid4().hex[:16]
        self.db = PgDb(url)
        self.messages = PgMessageStore(self.db, self.origin)
        self.agents = PgAgentStore(self.db)
        self.questions = PgQuestionStore(self.db)
        self.reminders = PgReminderStore(self.db)
        self.approvals = PgApprovalStore(self.db)
        self.search = PgSearchStore(self.db)
        self.permissions = PgPermissionStore(self.db)
        self.budgets = PgBudgetStore(self.db)
        self._tasks = tasks
        self._listener: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()  # set while LISTEN is in force (tests wait on it)
        self.reconnects = 0

    async def open(self) -> None:
        await self.db.open()
        self._listener = asyncio.get_running_loop().create_task(
            self._listen_forever(), name="pg-listen"
        )
        if self._tasks is not None:
            self._tasks.watch(self._listener, critical=False)
        try:  # a hang guard: the pool just connected, so LISTEN normally follows at once
            await asyncio.wait_for(self.listening.wait(), LISTEN_START_TIMEOUT)
        except TimeoutError:
            await self.aclose()
            raise Unavailable("the database's wake-up channel (LISTEN) did not start") from None

    async def aclose(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
        await self.db.aclose()

    async def _listen_forever(self) -> None:
        delay = RECONNECT_MIN
        first = True
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True)
            except psycopg.OperationalError as exc:
                logger.log(
                    logging.WARNING if delay == RECONNECT_MIN else logging.DEBUG,
                    "wake-up channel: cannot connect (%s); retrying every %.1fs at most",
                    exc,
                    RECONNECT_MAX,
                    extra={"action": "pg_listen_retry"},
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX)
                continue
            try:
                async with conn:
                    # what psycopg itself reads (with the LISTEN's answer) comes here too
                    conn.add_notify_handler(lambda n: self._on_payload(n.payload))
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    delay = RECONNECT_MIN
                    if not first:
                        self.reconnects += 1
                        logger.info(
                            "wake-up channel back", extra={"action": "pg_listen_reconnected"}
                        )
                        self._remote_committed(None)
                    first = False
                    await self._read_notifies(conn)
            except psycopg.OperationalError as exc:
                logger.warning("wake-up channel lost: %s", exc, extra={"action": "pg_listen_lost"})
            finally:
                self.listening.clear()
            await asyncio.sleep(delay)

    def _on_payload(self, payload: str) -> None:
        origin, _, rest = payload.partition(SEP)
        if origin == self.origin or not rest:
            return
        got = parse_payload(rest)
        if isinstance(got, Message):
            self._remote_arrived((got,))
        elif got is not None:
            self._remote_committed((got,))

    async def _read_notifies(self, conn: psycopg.AsyncConnection[object]) -> None:
        """Hand notifications over until the connection fails (raises its error). Read
        straight from libpq when the socket is readable: one callback per wake-up, with no
        task switch, lock, timer or `Notify` object per notification (every node reads every
        message's notification, its own ones included)."""
        loop = asyncio.get_running_loop()
        pgconn = conn.pgconn
        enc = conn.info.encoding
        lost: asyncio.Future[Exception] = loop.create_future()

        def readable() -> None:
            try:
                pgconn.consume_input()
                while (n := pgconn.notifies()) is not None:
                    self._on_payload(n.extra.decode(enc))
                if pgconn.status != psycopg.pq.ConnStatus.OK:
                    raise psycopg.OperationalError("the wake-up connection was closed")
            except psycopg.OperationalError as exc:
                if not lost.done():
                    lost.set_result(exc)
            except Exception:  # a bad payload: never stop listening
                logger.exception("wake-up notification failed")

        fd = pgconn.socket
        loop.add_reader(fd, readable)
        try:
            readable()  # anything libpq already holds
            raise await lost
        finally:
            loop.remove_reader(fd)
