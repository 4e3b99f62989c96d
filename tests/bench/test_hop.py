"""`hive bench hop` runs both modes end to end and reports what it measured (figures are
never asserted: only that each hop was seen in order and that a warm agent holds its CLI)."""

from __future__ import annotations

import json

import pytest

from hyperhive.bench.hop import hop_bench

pytestmark = pytest.mark.slow


async def test_hop_bench_measures_both_modes() -> None:
    result = await hop_bench(1, progress=lambda _msg: None)
    for mode in (result.cold, result.warm):
        assert len(mode.to_turn_ms) == len(mode.to_model_ms) == len(mode.to_reply_ms) == 2
        for turn, model, reply in zip(
            mode.to_turn_ms, mode.to_model_ms, mode.to_reply_ms, strict=True
        ):
            assert 0 <= turn <= model <= reply
        assert set(mode.rss_mb) == {"alice", "bob"}
    # idle after their turns, warm agents still hold claude (and its MCP server); cold do not
    assert min(result.warm.rss_mb.values()) > max(result.cold.rss_mb.values())
    body = json.loads(result.to_json())
    assert body["warm"]["summary"]["to_reply_p50"] == result.warm.summary()["to_reply_p50"]
    assert "warm hop p50" in result.human()
