"""`hive bench broker` end to end on a tiny load: every message is delivered and measured, and
the daemon's CPU figure comes from the real daemon process (the speed itself is never asserted
here: docs/benchmarks.md holds measured figures). The figure may be 0 on a short fast run:
/proc counts CPU in clock ticks (10 ms), more than 60 messages may cost."""

from __future__ import annotations

import math
from collections.abc import Callable

import psycopg

from hyperhive.bench.broker import run_broker_bench, run_broker_compare


def test_a_small_run_delivers_and_measures_everything() -> None:
    result = run_broker_bench(agents=3, messages=60, rate=None, senders=2)
    assert result.received == 60
    assert result.p50_ms <= result.p90_ms <= result.p99_ms <= result.max_ms
    assert result.daemon_cpu_us_per_msg >= 0 and math.isfinite(result.daemon_cpu_us_per_msg)
    assert result.reference_ms > 0
    assert "daemon CPU per message" in result.human()
    assert result.wal_peak_mb > 0 and "hive.sqlite-wal" in result.human()
    assert result.wal_end_mb == 0  # the idle daemon truncated its WAL


def test_db_runs_sqlite_beside_postgresql(pg_url: Callable[[], str]) -> None:
    url = pg_url()
    results = run_broker_compare(agents=3, messages=60, rate=None, senders=2, db=url)
    assert [r.backend for r in results] == ["sqlite", "postgresql"]
    for r in results:
        assert r.received == 60
        assert r.p50_ms <= r.p99_ms
    assert "broker on postgresql" in results[1].human()
    assert "hive.sqlite-wal" not in results[1].human()
    # the scratch schema is gone: the database holds no hive afterwards
    with psycopg.connect(url) as conn:
        left = conn.execute(
            "SELECT count(*) FROM information_schema.schemata WHERE schema_name LIKE 'hb_%'"
        ).fetchone()
    assert left == (0,)
