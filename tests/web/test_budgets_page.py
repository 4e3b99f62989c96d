"""The dashboard's budget meter and notices, in a real browser: the meter per agent, the 80 %
notice and the tripped breaker, live from the harness's usage reports."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import expect

from hyperhive.budgetconfig import AgentLimitsCfg, Budgets
from hyperhive.client.agent import NO_RETRY, AgentClient
from hyperhive.core.hive import Hive
from hyperhive.paths import HivePaths
from hyperhive.runtime.fake import FakeWorld
from tests.web.conftest import OpenPage, dash_config, fake_hive

pytestmark = pytest.mark.browser


@pytest.fixture
async def bhive(paths: HivePaths, world: FakeWorld) -> AsyncIterator[Hive]:
    cfg = dash_config().model_copy(
        update={"budgets": Budgets(defaults=AgentLimitsCfg(cost_usd_per_day=1.0))}
    )
    async with fake_hive(paths, cfg, world) as hive:
        yield hive


async def test_meter_notice_and_trip_show_live(bhive: Hive, open_page: OpenPage) -> None:
    await bhive.spawn("alice")
    page: Any = await open_page(bhive.dashboard_url)
    alice = page.locator('#container-list > li[data-name="alice"]')
    await expect(alice).to_be_visible()
    await expect(alice.locator(".budget")).to_have_count(0)  # nothing reported yet
    async with AgentClient(bhive.paths.agent_sock("alice"), retry=NO_RETRY) as harness:
        await harness.call("report_turn", model="haiku", cost_usd=0.9, input_tokens=5)
        await expect(alice.locator(".budget")).to_contain_text("90%")
        await expect(alice.locator(".budget meter")).to_have_attribute("value", "0.9")
        await expect(page.locator(".toast").last).to_contain_text(
            "alice: 90% of cost_usd_per_day used"
        )
        await harness.call("report_turn", model="haiku", cost_usd=0.2)
        await expect(alice.locator("[data-budget=tripped]")).to_have_text("budget tripped")
        await expect(alice.locator(".badge", has_text="paused")).to_have_count(1)
        await expect(page.locator(".toast.error").last).to_contain_text("breaker tripped")
