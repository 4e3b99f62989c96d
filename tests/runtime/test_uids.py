"""Agent uid allocation: sticky, distinct, persisted, and never a uid something still runs as."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from hyperhive.errors import InvalidName
from hyperhive.runtime.uids import UID_BASE, UidTable
from tests.support.waiting import eventually


def test_sticky_distinct_and_persisted(tmp_path: Path) -> None:
    table = UidTable(tmp_path / "uids.json", base=UID_BASE + 50000, count=100)
    a, b = table.allocate("alpha"), table.allocate("beta")
    assert a != b and a >= UID_BASE + 50000
    assert table.allocate("alpha") == a
    again = UidTable(tmp_path / "uids.json", base=UID_BASE + 50000, count=100)
    assert again.allocate("beta") == b and again.get("alpha") == a
    assert again.all() == {"alpha": a, "beta": b}


def test_released_uid_is_reused_only_when_idle(tmp_path: Path) -> None:
    table = UidTable(tmp_path / "uids.json", base=UID_BASE + 51000, count=100)
    a = table.allocate("alpha")
    table.release("alpha")
    table.release("alpha")  # idempotent
    assert table.allocate("gamma") == a  # nothing runs as it: reusable


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a process as another uid")
async def test_live_uid_is_skipped(tmp_path: Path) -> None:
    base = UID_BASE + 52000 + os.getpid() % 500
    table = UidTable(tmp_path / "uids.json", base=base, count=10)
    proc = await asyncio.create_subprocess_exec(
        "setpriv", f"--reuid={base}", f"--regid={base}", "--clear-groups", "sleep", "60"
    )
    try:
        # until setpriv has switched
        await eventually(lambda: os.stat(f"/proc/{proc.pid}").st_uid == base, 10, "setpriv")
        assert table.allocate("delta") == base + 1
    finally:
        proc.kill()
        await proc.wait()


def test_invalid_names_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidName):
        UidTable(tmp_path / "uids.json").allocate("../etc")
