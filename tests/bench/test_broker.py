"""`hive bench broker` end to end on a tiny load: every message is delivered and measured, and
the daemon's CPU figure comes from the real daemon process (the speed itself is never asserted
here: docs/benchmarks.md holds measured figures). The figure may be 0 on a short fast run:
/proc counts CPU in clock ticks (10 ms), more than 60 messages may cost."""

from __future__ import annotations

import math

from hyperhive.bench.broker import run_broker_bench


def test_a_small_run_delivers_and_measures_everything() -> None:
    result = run_broker_bench(agents=3, messages=60, rate=None, senders=2)
    assert result.received == 60
    assert result.p50_ms <= result.p90_ms <= result.p99_ms <= result.max_ms
    assert result.daemon_cpu_us_per_msg >= 0 and math.isfinite(result.daemon_cpu_us_per_msg)
    assert result.reference_ms > 0
    assert "daemon CPU per message" in result.human()
    assert result.wal_peak_mb > 0 and "hive.sqlite-wal" in result.human()
    assert result.wal_end_mb == 0  # the idle daemon truncated its WAL
