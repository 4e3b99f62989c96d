"""`core/store/transfer.py` carries every table that matters, both ways: a sqlite hive's rows
(a traced message, permission requests and kept rules in their order, budget usage, a trip
and a raise) go to PostgreSQL and back unchanged, ids included; an export from before those
tables and columns existed still imports."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from hyperhive.core.records import AgentRecord, NewMessage
from hyperhive.core.store.backend import SqliteStorage, Storage, open_storage
from hyperhive.core.store.budgets_base import Trip
from hyperhive.core.store.transfer import dump, load
from hyperhive.wire.permissions import PermissionStatus

T0 = "2026-01-01T00:00:00.000000Z"
T1 = "2026-01-01T00:01:00.000000Z"
T2 = "2026-01-01T00:02:00.000000Z"
TRACE = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


async def _fill(s: Storage) -> None:
    await s.agents.put_agent(AgentRecord(name="alice", kind="agent", created_at=T0))
    await s.messages.insert_messages(
        [NewMessage("operator", "alice", "traced", trace_parent=TRACE)], T0
    )
    await s.messages.insert_messages([NewMessage("operator", "alice", "plain")], T0)
    p = s.permissions
    asked = dict(harness="h1", tool="Bash", asked_at=T0, deadline_at=T2)
    first, _ = await p.insert(agent="alice", generation=1, key="k1", tool_input={"a": 1}, **asked)
    await p.insert(agent="alice", generation=1, key="k2", tool_input={"ü": [2]}, **asked)
    await p.decide(first.id, PermissionStatus.ALLOWED, T1, "ok", kept_rule="Bash(git:*)")
    for rule in ("Write", "Bash(git:*)", "Edit"):  # kept in this order, not sorted
        await p.keep_rule("alice", 1, rule, T1)
    b = s.budgets
    await b.add_usage("alice", T0, "haiku", 1200, 0.25)
    await b.add_usage("alice", T1, "haiku", 800, 0.5)
    await b.trip(Trip("alice", "cost_usd_per_day", "over", T1, 2.5, 7))
    await b.add_raise("alice", "cost_usd_per_day", 1.5, T2)


async def test_every_table_moves_to_postgresql_and_back(
    short_tmp: Path, pg_url: Callable[[], str]
) -> None:
    async with SqliteStorage(short_tmp / "a.sqlite") as src:
        await _fill(src)
        doc = await dump(src)
    tables = doc["tables"]
    assert [m["trace_parent"] for m in tables["messages"]] == [TRACE, None]
    assert [r["rule"] for r in tables["permission_rules"]] == ["Write", "Bash(git:*)", "Edit"]
    for table, n in [
        ("permission_requests", 2),
        ("budget_usage", 2),
        ("budget_trips", 1),
        ("budget_raises", 1),
    ]:
        assert len(tables[table]) == n, table
    async with open_storage(pg_url(), short_tmp / "unused") as pg:
        counts = await load(pg, doc)
        assert counts["permission_rules"] == 3
        assert await dump(pg) == doc
        # and the stores read them as they were
        assert await pg.permissions.rules("alice", 1) == ["Write", "Bash(git:*)", "Edit"]
        [pending] = await pg.permissions.pending("alice")
        assert pending.input == {"ü": [2]}
        assert (await pg.budgets.sums("alice", T0)).tokens == 2000
        assert [t.question_id for t in await pg.budgets.trips()] == [7]
        assert await pg.budgets.raises("alice", T1) == {"cost_usd_per_day": 1.5}
        # new ids continue above the imported ones
        row, created = await pg.permissions.insert(
            agent="alice",
            generation=1,
            harness="h2",
            key="k3",
            tool="Write",
            tool_input={},
            asked_at=T2,
            deadline_at=T2,
        )
        assert created and row.id > max(r["id"] for r in tables["permission_requests"])
        back = await dump(pg)
    async with SqliteStorage(short_tmp / "b.sqlite") as again:
        await load(again, back)
        assert await dump(again) == back


async def test_an_export_from_before_these_tables_still_imports(
    short_tmp: Path, pg_url: Callable[[], str]
) -> None:
    async with SqliteStorage(short_tmp / "a.sqlite") as src:
        await _fill(src)
        doc: dict[str, Any] = await dump(src)
    for table in ("permission_requests", "permission_rules", "budget_usage", "budget_trips"):
        del doc["tables"][table]
    del doc["tables"]["budget_raises"]
    for m in doc["tables"]["messages"]:
        del m["trace_parent"]
    async with open_storage(pg_url(), short_tmp / "unused") as pg:
        counts = await load(pg, doc)
        assert counts["messages"] == 2 and counts["permission_rules"] == 0
        got = await dump(pg)
    assert [m["trace_parent"] for m in got["tables"]["messages"]] == [None, None]
