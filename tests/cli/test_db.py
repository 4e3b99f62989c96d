"""`hive db export` / `hive db import` / `hive db migrate`: a single-host sqlite hive with unread
messages, an open question, a pending approval and a reminder moves to PostgreSQL, and after
the move every one of them is there and usable (recv, answer, approve, the reminder fires)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from hyperhive.assembly import build_hive
from hyperhive.config import HiveConfig
from hyperhive.core.hive import Hive
from hyperhive.paths import HivePaths
from tests.support.waiting import eventually

WITHOUT = ("dashboard",)


def hive_cmd(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "HIVE_DATABASE_URL"}
    return subprocess.run(
        [sys.executable, "-m", "hyperhive.cli", *args],
        env={**env, "HIVE_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=120,
    )


async def _fill(hive: Hive) -> dict[str, int]:
    await hive.spawn("alice")
    await hive.broker.send("operator", "alice", "unread one")
    await hive.broker.send("operator", "alice", "unread two")
    q = await hive.questions.ask("alice", "Deploy?", ["yes", "no"])
    a = await hive.approvals.request_spawn("helper", requested_by="operator", description="d")
    r = await hive.reminders.schedule("alice", "check the build", delay_seconds=1)
    return {"question": q.id, "approval": a.id, "reminder": r.id}


async def _check_usable(hive: Hive, ids: dict[str, int]) -> None:
    assert hive.registry.get("alice") is not None
    # the reminder was due while the hive was away: it fires on start, into alice's inbox
    await eventually(lambda: _no_pending_reminder(hive), timeout=60, what="the reminder to fire")
    lease = await hive.broker.recv("alice", 0, 10)
    bodies = [m.body for m in lease.messages]
    assert bodies[:2] == ["unread one", "unread two"]
    assert any("check the build" in b for b in bodies[2:])
    await hive.broker.ack(lease)
    [q] = await hive.questions.pending()
    assert q.id == ids["question"] and q.question == "Deploy?"
    answered = await hive.questions.answer(q.id, ["yes"])
    assert answered.answer == "yes"
    [a] = await hive.approvals.pending()
    assert a.id == ids["approval"] and a.agent == "helper"
    await hive.approvals.approve(a.id)
    await eventually(lambda: hive.registry.get("helper") is not None, timeout=60)
    # new rows continue above the imported ids
    [new] = await hive.broker.send("operator", "alice", "after the move")
    assert new.id > max(m.id for m in lease.messages)
    lease = await hive.broker.recv("alice", 0, 10)
    assert [m.body for m in lease.messages][-1] == "after the move"
    assert any('"operator_answered"' in m.body for m in lease.messages)


async def _no_pending_reminder(hive: Hive) -> bool:
    return await hive.reminders.count_pending("alice") == 0


@pytest.mark.parametrize("how", ["export-import", "migrate"])
async def test_a_sqlite_hive_moves_to_postgresql(
    short_tmp: Path, hive_config: HiveConfig, pg_url: Callable[[], str], how: str
) -> None:
    paths = HivePaths(short_tmp / "h")
    async with build_hive(paths, hive_config, without=WITHOUT) as hive:
        ids = await _fill(hive)
    url = pg_url()
    if how == "export-import":
        dump = short_tmp / "hive.json"
        r = hive_cmd(paths.home, "db", "export", str(dump), "--json")
        assert r.returncode == 0, r.stderr
        counts = json.loads(r.stdout)
        assert counts["messages"] == 2 and counts["approvals"] == 1
        assert dump.stat().st_mode & 0o077 == 0
        r = hive_cmd(paths.home, "db", "import", str(dump), "--db", url)
        assert r.returncode == 0, r.stderr
        # a second import into the same (now full) database is refused in one line
        r = hive_cmd(paths.home, "db", "import", str(dump), "--db", url)
        assert r.returncode != 0 and "already holds hive data" in r.stderr
    else:
        r = hive_cmd(paths.home, "db", "migrate", "--to", url)
        assert r.returncode == 0, r.stderr
    async with build_hive(paths, hive_config, database=url, without=WITHOUT) as hive:
        assert hive.storage.kind == "postgresql"
        await _check_usable(hive, ids)


async def test_import_refuses_a_file_that_is_not_an_export(short_tmp: Path) -> None:
    bad = short_tmp / "bad.json"
    bad.write_text('{"hello": 1}')
    r = hive_cmd(short_tmp / "h", "db", "import", str(bad))
    assert r.returncode != 0
    assert "not a hyperhive-db export" in r.stderr
