"""Status rows (`core/status.py`): a refresh of the whole hive reads each store once for all
agents, not once per agent, and every row still says what is waiting for its own agent (its
current incarnation's) and nobody else's."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from contextvars import ContextVar
from typing import Any

from hyperhive.client.agent import NO_RETRY, AgentClient
from hyperhive.client.host import HostClient
from hyperhive.core.hive import Hive
from hyperhive.core.permissions import PermissionsFeature
from hyperhive.core.status import status_row, status_rows
from tests.support.storage import query
from tests.support.waiting import eventually

_COUNTING: ContextVar[bool] = ContextVar("counting", default=False)


class _Reads:
    """Counts the reads and writes of the hive's database (every store shares it) made by the
    code `during` runs, not by the hive's own background tasks meanwhile."""

    def __init__(self, hive: Hive) -> None:
        self.n = 0
        db: Any = hive.broker.store.db  # type: ignore[attr-defined]
        for verb in ("read", "write"):
            orig: Callable[..., Awaitable[Any]] = getattr(db, verb)

            async def counted(*a: Any, _orig: Callable[..., Awaitable[Any]] = orig) -> Any:
                self.n += _COUNTING.get()
                return await _orig(*a)

            setattr(db, verb, counted)

    async def during(self, fn: Callable[[], Awaitable[object]]) -> int:
        before = self.n
        token = _COUNTING.set(True)
        try:
            await fn()
        finally:
            _COUNTING.reset(token)
        return self.n - before


async def test_a_refresh_reads_each_store_once_whatever_the_number_of_agents(
    hive: Hive,
) -> None:
    reads = _Reads(hive)

    async def refresh() -> int:
        await status_rows(hive)  # the first sight of an agent reads its budget for today once
        return await reads.during(lambda: status_rows(hive))

    for n in range(3):
        await hive.spawn(f"agent-{n}")
    few = await refresh()
    for n in range(3, 12):
        await hive.spawn(f"agent-{n}")
    many = await refresh()
    assert len(hive.registry.names()) >= 12
    assert many == few, (few, many)
    assert few <= 8, few  # unread, reminders, open questions, permissions (and little else)


async def test_each_row_says_what_waits_for_its_own_agent(hive: Hive) -> None:
    host = HostClient(hive.paths.host_sock)
    for name in ("alice", "bob", "carol", "dave"):
        await hive.spawn(name)
    # alice: a question of an incarnation that is gone, then two unread for the new one
    await hive.questions.ask("alice", "asked by the old alice?", ttl_seconds=600)
    await host.call("destroy", name="alice")
    await host.call("spawn", name="alice")
    assert await query(hive, "SELECT count(*) FROM operator_questions WHERE answered_at IS NULL")
    for i in range(2):
        await hive.broker.send("operator", "alice", f"for the new alice {i}")
    # bob: a reminder, two open questions (the older one is the note), one unread
    await hive.reminders.schedule("bob", "later", delay_seconds=3600)
    q1 = await hive.questions.ask("bob", "first?", ttl_seconds=600)
    await hive.questions.ask("bob", "second?", ttl_seconds=600)
    await hive.broker.send("alice", "bob", "hello bob")
    # carol: a tool permission request waiting for the operator
    perms = hive.feature("permissions")
    assert isinstance(perms, PermissionsFeature)
    async with AsyncExitStack() as stack:
        for name in ("alice", "bob", "carol"):  # connected, idle: a note shows what waits
            client = await stack.enter_async_context(
                AgentClient(hive.paths.agent_sock(name), retry=NO_RETRY)
            )
            await client.call("report_state", state="idle")
        asking = asyncio.create_task(
            perms.ask("carol", harness="h1", key="k1", tool="Bash", tool_input={"command": "x"})
        )
        try:
            await eventually(lambda: perms.pending("carol"))
            rows = {r.name: r for r in await status_rows(hive)}
            alone = {n: await status_row(hive, n) for n in rows}
        finally:
            asking.cancel()
    assert rows == alone  # a row asked alone is the same row

    a, b, c, d = rows["alice"], rows["bob"], rows["carol"], rows["dave"]
    assert (a.unread, a.pending_reminders, a.pending_permissions) == (2, 0, None)
    assert (a.state, a.state_note) == ("idle", None)  # the old alice's question is not hers
    assert (b.unread, b.pending_reminders, b.pending_permissions) == (1, 1, None)
    assert (b.state, b.state_note) == ("waiting_operator", f"question #{q1.id}: first?")
    assert (c.unread, c.pending_reminders, c.pending_permissions) == (0, 0, 1)
    assert c.state == "waiting_operator" and "Bash" in (c.state_note or "")
    assert (d.unread, d.pending_reminders, d.pending_permissions) == (0, 0, None)
    assert d.state == "stopped"
