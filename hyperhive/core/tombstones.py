"""Tombstones: kept state of agents that no longer exist (destroyed without purge).

A tombstone is a directory under `DIR/agents/` whose name is a valid agent name not in the
registry. Reviving one goes through a spawn approval (which reuses config and credentials);
purging wipes it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from hyperhive.clock import iso
from hyperhive.names import NAME_RE
from hyperhive.wire.lifecycle import TombstoneView

if TYPE_CHECKING:
    from hyperhive.core.hive import Hive


def dir_size(path: Path) -> tuple[int, float]:
    """Total bytes and the newest mtime below `path` (symlinks not followed)."""
    total = 0
    newest = path.stat().st_mtime
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                st = os.lstat(os.path.join(root, f))
            except OSError:
                continue
            total += st.st_size
            newest = max(newest, st.st_mtime)
    return total, newest


def list_tombstones(hive: Hive) -> list[TombstoneView]:
    out: list[TombstoneView] = []
    root = hive.paths.agents_dir
    if not root.is_dir():
        return out
    now = time.time()
    for d in sorted(root.iterdir()):
        if not d.is_dir() or not NAME_RE.fullmatch(d.name) or hive.registry.get(d.name) is not None:
            continue
        size, newest = dir_size(d)
        creds = (d / "state" / ".claude" / ".credentials.json").exists()
        out.append(
            TombstoneView(
                name=d.name,
                size_bytes=size,
                modified_at=iso(newest),
                age_seconds=max(0.0, now - newest),
                credentials_kept=creds,
            )
        )
    return out
