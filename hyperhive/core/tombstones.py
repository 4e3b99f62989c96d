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

from hyperhive import safefs
from hyperhive.clock import iso
from hyperhive.names import NAME_RE
from hyperhive.wire.lifecycle import TombstoneView

if TYPE_CHECKING:
    from hyperhive.core.hive import Hive


def dir_size(path: Path) -> tuple[int, float]:
    """Total bytes and the newest mtime below `path`. The agent wrote its state dir: the walk
    is fd-based (`os.fwalk`), so a directory swapped for a link mid-walk is never entered."""
    total = 0
    newest = os.lstat(path).st_mtime
    for _root, _dirs, files, dfd in os.fwalk(path, follow_symlinks=False):
        for f in files:
            try:
                st = os.stat(f, dir_fd=dfd, follow_symlinks=False)
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
        if not d.is_dir() or not NAME_RE.match(d.name) or hive.registry.get(d.name) is not None:
            continue
        size, newest = dir_size(d)
        creds = safefs.is_regular(d, "state/.claude/.credentials.json")  # a link is not kept
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
