"""Retention of the agents' own stores, done by the host (a misbehaving harness could skip it).

Per agent state dir: `hyperhive-events.sqlite` loses rows older than `events_days`, then is
trimmed to the newest `events_keep`; `hyperhive-turn-stats.sqlite` loses rows older than
`stats_days`. The harness is those stores' usual writer; this sweep is the only other one
(sqlite's locks serialise the two). Files the sweep creates are handed back to the store's
owner so a sandboxed agent can keep writing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from hyperhive.clock import iso

logger = logging.getLogger(__name__)

EVENTS_DB = "hyperhive-events.sqlite"
STATS_DB = "hyperhive-turn-stats.sqlite"


@dataclass(frozen=True)
class SweepResult:
    events: int = 0
    stats: int = 0


def _open(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=10, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 10000")
    return conn


def _give_back(path: Path) -> None:
    with contextlib.suppress(OSError):
        st = path.stat()
        for suffix in ("-wal", "-shm"):
            side = path.with_name(path.name + suffix)
            if side.exists():
                os.chown(side, st.st_uid, st.st_gid)


def sweep_state_dir(
    state_dir: Path, now: float, events_days: float, events_keep: int, stats_days: float
) -> SweepResult:
    events = stats = 0
    ev = state_dir / EVENTS_DB
    if ev.exists():
        conn = _open(ev)
        try:
            with conn:
                events += conn.execute(
                    "DELETE FROM events WHERE ts < ?", (iso(now - events_days * 86400),)
                ).rowcount
                events += conn.execute(
                    "DELETE FROM events WHERE id <= (SELECT id FROM events ORDER BY id DESC LIMIT 1 OFFSET ?)",
                    (events_keep,),
                ).rowcount
        except sqlite3.OperationalError as exc:
            logger.warning(
                "events sweep of %s failed: %s", ev, exc, extra={"action": "sweep_failed"}
            )
        finally:
            conn.close()
            _give_back(ev)
    st = state_dir / STATS_DB
    if st.exists():
        conn = _open(st)
        try:
            with conn:
                stats += conn.execute(
                    "DELETE FROM turn_stats WHERE started_at < ?", (iso(now - stats_days * 86400),)
                ).rowcount
        except sqlite3.OperationalError as exc:
            logger.warning(
                "stats sweep of %s failed: %s", st, exc, extra={"action": "sweep_failed"}
            )
        finally:
            conn.close()
            _give_back(st)
    return SweepResult(events, stats)


def sweep_all(
    agents_dir: Path, now: float, events_days: float, events_keep: int, stats_days: float
) -> SweepResult:
    total = SweepResult()
    if not agents_dir.is_dir():
        return total
    for d in sorted(agents_dir.iterdir()):
        state = d / "state"
        if state.is_dir():
            r = sweep_state_dir(state, now, events_days, events_keep, stats_days)
            if r.events or r.stats:
                logger.info(
                    "retention: %s: deleted %d event(s), %d turn stat(s)",
                    d.name,
                    r.events,
                    r.stats,
                    extra={"action": "sweep", "agent": d.name},
                )
            total = SweepResult(total.events + r.events, total.stats + r.stats)
    return total
