"""`hive budgets [--json]` against a real `hive serve` with budgets in hive.toml."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.daemon import DaemonProcess, hive_cli

CONFIG = """
[defaults]
runtime = "external"
[budgets]
hive_cost_usd_per_day = 10
[budgets.defaults]
cost_usd_per_day = 2
turns_per_hour = 5
"""


@pytest.fixture
def budget_daemon(short_tmp: Path) -> Iterator[DaemonProcess]:
    d = DaemonProcess(short_tmp / "h", config=CONFIG).start()
    try:
        yield d
    finally:
        d.stop()


def test_budgets_shows_use_against_limits(budget_daemon: DaemonProcess) -> None:
    d = budget_daemon
    assert hive_cli(d, "spawn", "alice").returncode == 0
    usage = {"model": "haiku", "input_tokens": 100, "output_tokens": 20, "cost_usd": 0.5}
    out = hive_cli(d, "call", "--as", "alice", "report_turn", json.dumps(usage))
    assert out.returncode == 0, (out.stdout, out.stderr)

    text = hive_cli(d, "budgets")
    assert text.returncode == 0, text.stderr
    line = next(ln for ln in text.stdout.splitlines() if ln.startswith("alice"))
    assert "0.50/2.00" in line and "1/5" in line and "25%" in line and line.endswith("ok")
    assert "hive cost today: 0.50 of 10.00" in text.stdout

    data = json.loads(hive_cli(d, "budgets", "--json").stdout)
    alice = next(r for r in data["agents"] if r["agent"] == "alice")
    by_key = {u["key"]: u for u in alice["limits"]}
    assert by_key["tokens_per_hour"] == {
        "key": "tokens_per_hour",
        "used": 120.0,
        "limit": 0.0,
        "fraction": 0.0,
    }
    assert by_key["cost_usd_per_day"]["fraction"] == 0.25
    assert alice["worst"] == 0.25 and "tripped" not in alice
    assert data["hive"] == {
        "key": "hive_cost_usd_per_day",
        "used": 0.5,
        "limit": 10.0,
        "fraction": 0.05,
    }
    bad = hive_cli(d, "call", "--as", "alice", "report_turn", json.dumps({"turns": 1}))
    assert bad.returncode == 1 and json.loads(bad.stdout)["code"] == "bad_request"
