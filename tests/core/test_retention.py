"""The host sweeps agents' event and stats stores: old rows go, then a trim to the newest N."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from hyperhive.clock import iso
from hyperhive.core.retention import sweep_all
from hyperhive.harness.events import EventBus
from hyperhive.harness.stats import TurnStatRow, TurnStats, read_stats


async def test_sweep_agent_stores(short_tmp: Path) -> None:
    state = short_tmp / "agents" / "alice" / "state"
    state.mkdir(parents=True)
    now = time.time()
    async with EventBus(state) as bus:
        for i in range(30):
            bus.publish("note", text=f"n{i}")
    # age the first ten events by hand (as if written 8 days ago)
    import sqlite3

    conn = sqlite3.connect(state / "hyperhive-events.sqlite")
    with conn:
        conn.execute("UPDATE events SET ts = ? WHERE id <= 10", (iso(now - 8 * 86400),))
    conn.close()
    async with TurnStats(state) as stats:
        for age_days in (100, 1):
            await stats.record(
                TurnStatRow(
                    model="haiku",
                    wake_from="x",
                    result_kind="ok",
                    started_at=iso(now - age_days * 86400),
                    ended_at=iso(now),
                    duration_ms=1,
                )
            )
    r = sweep_all(short_tmp / "agents", now, events_days=7, events_keep=15, stats_days=90)
    assert r.events == 15 and r.stats == 1  # 10 too old, then 5 more to keep 15
    conn = sqlite3.connect(state / "hyperhive-events.sqlite")
    ids = [row[0] for row in conn.execute("SELECT id FROM events ORDER BY id")]
    conn.close()
    assert ids == list(range(16, 31))
    rows, totals = read_stats(state)
    assert totals["turns"] == 1 and len(rows) == 1


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to hand the store to an agent uid")
async def test_stats_of_an_agent_store_are_read_as_the_agent(short_tmp: Path) -> None:
    """`hive stats` as root reads an agent's store in a child running as the agent (root
    never parses a file the agent crafted); the rows are the same."""
    state = short_tmp / "agents" / "bob" / "state"
    state.mkdir(parents=True)
    now = time.time()
    async with TurnStats(state) as stats:
        await stats.record(
            TurnStatRow(
                model="haiku",
                wake_from="x",
                result_kind="ok",
                started_at=iso(now),
                ended_at=iso(now),
                duration_ms=7,
            )
        )
    os.chmod(short_tmp, 0o700)  # the agent could not even reach its dir by path
    for p in [state, *state.iterdir()]:
        os.chown(p, 231777, 231777)
    rows, totals = read_stats(state)
    assert totals["turns"] == 1 and rows[0]["duration_ms"] == 7 and rows[0]["model"] == "haiku"
