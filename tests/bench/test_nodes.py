"""`hive bench broker --db URL --nodes N` (bench/nodes.py) on a small run: every message crosses
nodes and arrives, and killing a node is seen with its leased messages unread again. Figures
are not asserted here (docs/benchmarks.md holds measured ones)."""

from __future__ import annotations

from collections.abc import Callable

from hyperhive.bench.nodes import KILL_MESSAGES, run_nodes_bench


def test_a_small_run_across_two_nodes(pg_url: Callable[[], str]) -> None:
    result = run_nodes_bench(pg_url(), nodes=2, agents=4, messages=80, rate=None, senders=2)
    assert result.nodes == 2 and result.received == 80
    assert result.p50_ms <= result.p99_ms
    assert result.lost_seen_s is not None and result.lost_unread == KILL_MESSAGES
    assert "seen lost" in result.human()
