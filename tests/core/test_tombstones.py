"""Tombstones are listed off the event loop and with a bound (issue #12: `tombstones` walked
directories on the loop, a 0.75 s stall per call with 200k files)."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import pytest

from hyperhive.core import tombstones
from hyperhive.core.hive import Hive


async def host_call(hive: Hive, body: dict[str, object]) -> dict[str, object]:
    reader, writer = await asyncio.open_unix_connection(str(hive.paths.host_sock))
    writer.write(json.dumps(body).encode() + b"\n")
    await writer.drain()
    answer: dict[str, object] = json.loads(await asyncio.wait_for(reader.readline(), 30))
    writer.close()
    return answer


async def test_the_host_verb_walks_off_the_event_loop(
    hive: Hive, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = hive.paths.state_dir("ghost")
    dead.mkdir(parents=True)
    (dead / "notes.md").write_text("x" * 100)
    walkers: list[int] = []
    real = tombstones.dir_size

    def recording(path: Path, limit: int = tombstones.WALK_LIMIT) -> tuple[int, float, bool]:
        walkers.append(threading.get_ident())
        return real(path, limit)

    monkeypatch.setattr(tombstones, "dir_size", recording)
    answer = await host_call(hive, {"cmd": "tombstones"})
    assert answer["ok"] is True
    assert [t["name"] for t in answer["tombstones"]] == ["ghost"]  # type: ignore[union-attr]
    assert walkers and threading.get_ident() not in walkers


def test_the_walk_is_bounded(tmp_path: Path) -> None:
    for i in range(50):
        (tmp_path / f"f{i}").write_bytes(b"x" * 10)
    assert tombstones.dir_size(tmp_path)[:1] + tombstones.dir_size(tmp_path)[2:] == (500, False)
    size, _newest, partial = tombstones.dir_size(tmp_path, limit=20)
    assert size == 200 and partial
