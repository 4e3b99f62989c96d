"""`hive nodes [--json]`, `hive spawn --node`, `hive serve --node`: the real CLI against a real
single-host daemon (one node)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.daemon import DaemonProcess, hive_cli


def test_nodes_and_spawn_on_a_node(short_tmp: Path) -> None:
    d = DaemonProcess(short_tmp / "h", "--node", "alpha").start()
    try:
        out = hive_cli(d, "nodes", "--json")
        assert out.returncode == 0, out.stderr
        [row] = json.loads(out.stdout)
        assert row["name"] == "alpha" and row["live"] and row["this"] and row["agents"] == 1
        table = hive_cli(d, "nodes")
        assert table.stdout.splitlines()[0].split()[:3] == ["NODE", "STATE", "HEARTBEAT"]
        assert "alpha" in table.stdout and "live (this)" in table.stdout
        ok = hive_cli(d, "spawn", "alice", "--node", "alpha")
        assert ok.returncode == 0, ok.stderr
        bad = hive_cli(d, "spawn", "bob", "--node", "beta")
        assert bad.returncode != 0
        assert bad.stderr.strip().splitlines() == [
            "error: no node 'beta' in this hive (see `hive nodes`)"
        ]
        rows = json.loads(hive_cli(d, "status", "--json").stdout)
        assert {r["name"]: r["node"] for r in rows} == {"alice": "alpha", "manager": "alpha"}
    finally:
        d.stop()
