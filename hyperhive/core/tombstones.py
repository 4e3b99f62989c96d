"""Tombstones: kept state of agents that no longer exist (destroyed without purge).

A tombstone is a directory under `DIR/agents/` whose name is a valid agent name not in the
registry. Reviving one goes through a spawn approval (which reuses config and credentials);
purging wipes it.

Invariants: listing walks the directories in a worker thread, never on the event loop (an
agent's state may hold hundreds of thousands of files), and each walk stops after
`WALK_LIMIT` entries: a size past that is a lower bound (logged), the call stays short.
"""

from __future__ import annotations

import asyncio
import logging
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

logger = logging.getLogger(__name__)

WALK_LIMIT = 50_000  # entries looked at per tombstone


def dir_size(path: Path, limit: int = WALK_LIMIT) -> tuple[int, float, bool]:
    """Total bytes and the newest mtime below `path`, and whether the walk stopped at `limit`
    entries (then the size is a lower bound). The agent wrote its state dir: the walk is
    fd-based (`os.fwalk`), so a directory swapped for a link mid-walk is never entered."""
    total = 0
    seen = 0
    newest = os.lstat(path).st_mtime
    for _root, dirs, files, dfd in os.fwalk(path, follow_symlinks=False):
        for f in files:
            if seen >= limit:
                return total, newest, True
            seen += 1
            try:
                st = os.stat(f, dir_fd=dfd, follow_symlinks=False)
            except OSError:
                continue
            total += st.st_size
            newest = max(newest, st.st_mtime)
        seen += len(dirs)
    return total, newest, False


def _scan(root: Path, live: frozenset[str]) -> list[TombstoneView]:
    out: list[TombstoneView] = []
    if not root.is_dir():
        return out
    now = time.time()
    for d in sorted(root.iterdir()):
        if not d.is_dir() or not NAME_RE.fullmatch(d.name) or d.name in live:
            continue
        size, newest, partial = dir_size(d)
        if partial:
            logger.info(
                "%s's kept state has over %d entries: its size is a lower bound",
                d.name,
                WALK_LIMIT,
                extra={"action": "tombstone_walk_bounded", "agent": d.name},
            )
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


async def list_tombstones(hive: Hive) -> list[TombstoneView]:
    """Every tombstone of `hive`, walked in a worker thread (see the module docstring)."""
    live = frozenset(hive.registry.names())
    return await asyncio.to_thread(_scan, hive.paths.agents_dir, live)
