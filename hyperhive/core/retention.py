"""Retention of the agents' own stores, done by the host (a misbehaving harness could skip it).

Per agent state dir: `hyperhive-events.sqlite` loses rows older than `events_days`, then is
trimmed to the newest `events_keep`; `hyperhive-turn-stats.sqlite` loses rows older than
`stats_days`. The harness is those stores' usual writer; this sweep is the only other one
(sqlite's locks serialise the two).

Invariant: the agent can write everything in its state dir (the stores, their `-wal`/`-shm`,
links in their place), and sqlite opens by path and follows links. So a root daemon never
opens them itself: the sweep of a state dir owned by another uid runs in a child process as
that uid (`safefs.run_as`, `python -m hyperhive.core.retention`), started in the state dir
through an fd opened without following links. Whatever the sweep creates then belongs to the
agent already; nothing is chowned.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from hyperhive import safefs
from hyperhive.clock import iso
from hyperhive.db import harden

logger = logging.getLogger(__name__)

EVENTS_DB = "hyperhive-events.sqlite"
STATS_DB = "hyperhive-turn-stats.sqlite"


@dataclass(frozen=True)
class SweepResult:
    events: int = 0
    stats: int = 0


def _open(path: Path) -> sqlite3.Connection:
    conn = harden(sqlite3.connect(path, timeout=10, isolation_level=None))
    conn.execute("PRAGMA busy_timeout = 10000")
    return conn


SWEEP_TIMEOUT = 300.0


def _sweep_here(
    state_dir: Path, now: float, events_days: float, events_keep: int, stats_days: float
) -> SweepResult:
    """The sweep itself, by path: only ever run as the uid owning `state_dir`."""
    events = stats = 0
    ev = state_dir / EVENTS_DB
    if ev.is_file():
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
    st = state_dir / STATS_DB
    if st.is_file():
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
    return SweepResult(events, stats)


def sweep_state_dir(
    state_dir: Path, now: float, events_days: float, events_keep: int, stats_days: float
) -> SweepResult:
    """Sweep one state dir, as the uid that owns it (see the module docstring)."""
    try:
        fd = os.open(state_dir, safefs.DIR_FLAGS)
    except OSError:
        return SweepResult()
    try:
        owner = os.fstat(fd).st_uid
        if os.geteuid() != 0 or owner == 0:  # the agent is us: nothing to reach through links
            return _sweep_here(state_dir, now, events_days, events_keep, stats_days)
        args = [repr(now), repr(events_days), str(events_keep), repr(stats_days)]
        done = safefs.run_as(owner, fd, __name__, args, SWEEP_TIMEOUT)
    finally:
        os.close(fd)
    if done.returncode != 0:
        logger.warning(
            "sweep of %s (as uid %d) failed: %s",
            state_dir,
            owner,
            done.stderr.strip()[-500:],
            extra={"action": "sweep_failed"},
        )
        return SweepResult()
    try:
        got = json.loads(done.stdout.strip().splitlines()[-1])
        return SweepResult(int(got["events"]), int(got["stats"]))
    except (ValueError, KeyError, IndexError, TypeError):
        return SweepResult()


def sweep_all(
    agents_dir: Path, now: float, events_days: float, events_keep: int, stats_days: float
) -> SweepResult:
    total = SweepResult()
    if not agents_dir.is_dir():
        return total
    for d in sorted(agents_dir.iterdir()):
        state = d / "state"
        if os.path.isdir(state) and not os.path.islink(state):
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


def child_main(argv: list[str]) -> None:
    """Child entry (`safefs.run_as`, already the agent's uid): sweep the current directory and
    print the counts as JSON."""
    now, events_days, events_keep, stats_days = argv
    r = _sweep_here(Path("."), float(now), float(events_days), int(events_keep), float(stats_days))
    print(json.dumps({"events": r.events, "stats": r.stats}))
