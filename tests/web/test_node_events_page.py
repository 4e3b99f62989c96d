"""Node A's dashboard, live, for what happens on node B (issue #15): two hives (nodes) in one
process on one PostgreSQL database, headless Chromium on node A's dashboard. A message the
operator sends on node B appears in A's message flow without a reload, labelled with its node;
a breaker tripping on node B shows on alice's row in A's table."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from playwright.async_api import expect

from hyperhive.assembly import build_hive
from hyperhive.client.host import HostClient
from hyperhive.config import Dashboard, Defaults, HiveConfig, NodeCfg
from hyperhive.core.budgets import BudgetsFeature
from hyperhive.core.hive import Hive
from hyperhive.core.nodes import NodesFeature
from hyperhive.paths import HivePaths
from tests.support.waiting import eventually
from tests.web.conftest import OpenPage

CFG = HiveConfig(
    defaults=Defaults(runtime="external"),
    node=NodeCfg(heartbeat_seconds=0.2, lost_after_seconds=5.0),
    dashboard=Dashboard(listen="127.0.0.1:0"),
)


def nodes_of(hive: Hive) -> NodesFeature:
    f = hive.feature("nodes")
    assert isinstance(f, NodesFeature)
    return f


async def test_node_b_message_in_node_a_flow_without_reload(
    short_tmp: Path, pg_url: Callable[[], str], open_page: OpenPage
) -> None:
    url = pg_url()
    async with (
        build_hive(HivePaths(short_tmp / "a"), CFG, database=url, node="node-a") as a,
        build_hive(HivePaths(short_tmp / "b"), CFG, database=url, node="node-b") as b,
    ):
        await eventually(lambda: nodes_of(b).is_live("node-a"), what="b sees a", timeout=60)
        await eventually(lambda: nodes_of(a).is_live("node-b"), what="a sees b", timeout=60)
        await HostClient(a.paths.host_sock).call("spawn", name="alice", node="node-b")
        await eventually(lambda: nodes_of(b).owns("alice"), what="b runs alice", timeout=60)
        page = await open_page(a.dashboard_url)
        await page.evaluate("window.__sameDocument = true")  # gone if the page reloads
        await HostClient(b.paths.host_sock).call("send", to="alice", body="sent on node b")
        row = page.locator("#flow-list > li", has_text="sent on node b")
        await expect(row).to_have_count(1)
        await expect(row.locator(".from")).to_have_text("operator")
        await expect(row.locator(".to")).to_have_text("alice")
        await expect(row.locator(".fnode")).to_have_text("@node-b")
        # alice's breaker trips on node B: A's table shows it, still the same document
        budgets = b.feature("budgets")
        assert isinstance(budgets, BudgetsFeature)
        await budgets.trip("alice", "turns_per_hour", "alice's turns_per_hour limit", 10)
        await expect(page.locator('[data-budget="tripped"]')).to_have_count(1)
        assert await page.evaluate("window.__sameDocument === true")
