"""`hyperhive.clock.iso`: exact RFC 3339 microsecond stamps, whatever its second cache holds."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal

from hyperhive.clock import iso, parse_iso


def _reference(ts: float) -> str:
    micros = int((Decimal(ts) * 1_000_000).to_integral_value(ROUND_HALF_EVEN))  # exact
    return (
        datetime.fromtimestamp(micros // 1_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        + f".{micros % 1_000_000:06d}Z"
    )


def test_iso_matches_datetime_across_second_boundaries_and_cache_flips() -> None:
    rng = random.Random(7)
    stamps = [0.0, 1.9999996, 59.9999999, 1_700_000_000.5, 4_102_444_799.9999997]
    base = 1_763_000_000
    stamps += [base + rng.random() * 3 for _ in range(2000)]  # same second, then the next
    stamps += [rng.uniform(0, 4e9) for _ in range(2000)]  # a different second every time
    for ts in stamps:
        assert iso(ts) == _reference(ts), ts


def test_iso_sorts_in_time_order_and_parses_back() -> None:
    ts = [1_763_000_000 + i * 0.25 for i in range(12)]
    out = [iso(t) for t in ts]
    assert out == sorted(out)
    assert [parse_iso(s) for s in out] == ts
