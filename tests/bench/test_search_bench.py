"""`hive bench search` end to end on a tiny corpus: every query answered and measured through
a real daemon, every class of the mix hit (the speed itself is never asserted here:
docs/benchmarks.md holds measured figures)."""

from __future__ import annotations

from click.testing import CliRunner

from hyperhive.bench.search import run_search_bench
from hyperhive.cli.main import cli


def test_a_small_run_measures_every_query_class() -> None:
    result = run_search_bench(messages=600, turns=40, rounds=1)
    assert result.queries == 8 * 50
    assert result.p50_ms <= result.p90_ms <= result.p99_ms <= result.max_ms
    assert set(result.by_class) == {
        "rare word",
        "common word",
        "two words",
        "phrase",
        "prefix",
        "by agent",
        "last day",
        "turns only",
    }
    assert result.by_class["common word"]["hits"] == 20  # a common word fills the page
    assert result.by_class["turns only"]["hits"] > 0  # kept by the daemon's indexer
    assert result.insert_msgs_per_s > 0 and result.insert_msgs_per_s_no_index > 0
    assert "search (sqlite): 600 messages + 40 turn docs" in result.human()


def test_the_cli_refuses_bad_sizes() -> None:
    out = CliRunner().invoke(cli, ["bench", "search", "--messages", "0"])
    assert out.exit_code == 2 and "--messages" in out.output
