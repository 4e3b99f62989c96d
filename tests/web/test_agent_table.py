"""The agent table and the attention bar in headless Chromium: one line per agent, sortable and
filterable, what each is doing now (a turn's age, its tool), details on expand; the bar's counts
in the banner and the tab title, each linking to its items, on a phone too; a feature from
elsewhere (budgets) shows up in the bar and the table without an edit."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import expect

from hyperhive.assembly import build_features
from hyperhive.client.agent import NO_RETRY, AgentClient
from hyperhive.clock import iso
from hyperhive.core.feature import BaseFeature
from hyperhive.core.hive import Hive
from hyperhive.paths import HivePaths
from hyperhive.runtime.fake import FakeRuntime, FakeWorld
from hyperhive.wire.attention import AttentionItem
from tests.web.conftest import NARROW, OpenPage, agent_row, dash_config, expanded, fake_runtime

pytestmark = pytest.mark.browser

ORDER = (
    "() => Array.from(document.querySelectorAll('#container-list > li:not([hidden])'))"
    ".map(li => li.dataset.name)"
)


async def order(page: Any) -> list[str]:
    got: list[str] = await page.evaluate(ORDER)
    return got


async def test_sort_filter_and_what_each_agent_does(dhive: Hive, page: Any) -> None:
    for name in ("alice", "bob", "carol", "dave"):
        await dhive.spawn(name)
    await expect(page.locator("#container-list > li")).to_have_count(5)
    assert await order(page) == ["manager", "alice", "bob", "carol", "dave"]
    started = iso(dhive.clock.now() - 95)
    async with AgentClient(dhive.paths.agent_sock("bob"), retry=NO_RETRY) as bob_harness:
        await bob_harness.call("report_state", state="in_turn", turn_started_at=started)
        await bob_harness.call("report_state", state="in_turn", tool="Bash")
        bob = agent_row(page, "bob")
        await expect(bob.locator(".c-doing .state-note")).to_have_text("running Bash")
        # in this turn for 1m 35s and counting
        await expect(bob.locator(".turn-for")).to_have_text(re.compile(r"^[1-9]m \d\ds$"))
        first = await bob.locator(".turn-for").text_content()
        await expect(bob.locator(".turn-for")).not_to_have_text(first or "")

        # one line per agent: the row is about as tall as its text
        height = await bob.evaluate("el => el.getBoundingClientRect().height")
        assert height < 48, height

        await page.get_by_role("button", name="sort by name").click()
        await expect(page.get_by_role("button", name="sort by name")).to_have_attribute(
            "aria-pressed", "true"
        )
        assert await order(page) == ["alice", "bob", "carol", "dave", "manager"]
        await page.get_by_role("button", name="sort by name").click()  # descending
        assert await order(page) == ["manager", "dave", "carol", "bob", "alice"]
        await page.get_by_role("button", name="sort by what it is doing").click()
        assert (await order(page))[0] == "bob"  # the one in a turn first

        await page.get_by_label("filter agents by name, state or what they do").fill("bash")
        await expect(page.locator("#container-list > li:not([hidden])")).to_have_count(1)
        assert await order(page) == ["bob"]
        await expect(page.locator("#agent-shown")).to_have_text("1 of 5 agents shown")
        await page.get_by_label("filter agents by name, state or what they do").fill("")
        await page.get_by_label("show which agents").select_option("working")
        assert await order(page) == ["bob"]
        await page.get_by_label("show which agents").select_option("all")
        await expect(page.locator("#container-list > li:not([hidden])")).to_have_count(5)

    # details on expand: meta, actions, logs; the row keeps them open across refreshes
    carol = agent_row(page, "carol")
    await expect(carol.locator("button[data-action=restart]")).to_be_hidden()
    await expanded(page, "carol")
    await expect(carol.locator(".expand")).to_have_attribute("aria-expanded", "true")
    await expect(carol.locator("button[data-action=restart]")).to_be_visible()
    await dhive.registry.update("carol", paused=True)
    await expect(carol.locator(".badge.state")).to_have_text("paused")
    await expect(carol.locator("button[data-action=unpause]")).to_be_visible()


async def test_attention_bar_counts_and_links(
    dhive: Hive, world: FakeWorld, open_page: OpenPage
) -> None:
    await dhive.spawn("alice")
    await dhive.spawn("bob")
    page = await open_page(dhive.dashboard_url)
    bar = page.get_by_role("navigation", name="needs attention")
    await expect(page.locator("#attention-calm")).to_have_text("✓ nothing needs you")
    await expect(page.locator("#attention-calm")).to_be_visible()
    await expect(page).to_have_title("hyperhive · c0re")

    q = await dhive.questions.ask("manager", "Ship it?", ["yes", "no"])
    await dhive.approvals.request_spawn("zed", requested_by="operator", description="x")
    await dhive.broker.send("alice", "operator", "done with the parser")
    fake_runtime(dhive, "bob").exit("bob", 1)
    await dhive.crash_watch.tick()

    questions = bar.get_by_role("link", name=re.compile("open questions"))
    await expect(questions).to_have_text("open questions 1")
    await expect(bar.get_by_role("link", name=re.compile("pending approvals"))).to_have_text(
        "pending approvals 1"
    )
    await expect(bar.get_by_role("link", name=re.compile("unread operator mail"))).to_have_text(
        "unread operator mail 1"
    )
    failed = bar.get_by_role("link", name=re.compile("failed or crashed"))
    await expect(failed).to_have_text("failed or crashed agents 1")
    await expect(page).to_have_title("(4) hyperhive · c0re")
    await expect(page.locator("#attention-calm")).to_be_hidden()

    await questions.click()
    await expect(page.locator("#h-questions")).to_be_in_viewport()
    await failed.click()  # the table shows the failing agents only
    await expect(page.get_by_label("show which agents")).to_have_value("failing")
    await expect(page.locator("#container-list > li:not([hidden])")).to_have_count(1)
    assert await order(page) == ["bob"]

    # live: answering the question takes its count away
    await dhive.questions.answer(q.id, ["yes"])
    await expect(questions).to_have_count(0)
    await expect(page).to_have_title("(3) hyperhive · c0re")


async def test_attention_bar_on_a_phone(dhive: Hive, open_page: OpenPage) -> None:
    for i in range(12):
        await dhive.spawn(f"agent-{i}")
    await dhive.approvals.request_spawn("zed", requested_by="operator", description="x")
    page = await open_page(dhive.dashboard_url, viewport=NARROW)
    await expect(page.locator("#container-list > li")).to_have_count(13)
    link = page.get_by_role("navigation", name="needs attention").get_by_role(
        "link", name=re.compile("pending approvals")
    )
    await expect(link).to_be_in_viewport()
    await link.click()
    await expect(page.locator("#h-approvals")).to_be_in_viewport()
    # the table fits the phone: no sideways scrolling, a row stays short
    wide = await page.evaluate("document.documentElement.scrollWidth > window.innerWidth + 1")
    assert not wide
    height = await agent_row(page, "agent-3").evaluate("el => el.getBoundingClientRect().height")
    assert height < 80, height
    r = await expanded(page, "agent-3")
    await expect(r.locator("button[data-action=restart]")).to_be_in_viewport()


class Budgets(BaseFeature):
    """What the budgets branch adds: an attention source and usage in the status rows."""

    name = "budgets_elsewhere"

    def __init__(self) -> None:
        self.tripped = 0

    async def attention(self) -> list[AttentionItem]:
        return [
            AttentionItem(
                kind="budgets", count=self.tripped, label="tripped budgets", href="#containers"
            )
        ]

    async def status_fields(self, agent: str) -> dict[str, Any]:
        return {"tokens_today": 12345, "cost_today_usd": 0.42} if agent == "alice" else {}


@pytest.fixture
async def budget_hive(paths: HivePaths, world: FakeWorld) -> AsyncIterator[tuple[Hive, Budgets]]:
    features, lifecycle = build_features(
        runtime_factory=lambda name: FakeRuntime(world), crash_interval=3600
    )
    budgets = Budgets()
    async with Hive(paths, dash_config(), features=[*features, budgets], launcher=lifecycle) as h:
        yield h, budgets


async def test_a_feature_from_elsewhere_shows_up(
    budget_hive: tuple[Hive, Budgets], open_page: OpenPage
) -> None:
    hive, budgets = budget_hive
    await hive.spawn("alice")
    page = await open_page(hive.dashboard_url)
    await expect(agent_row(page, "alice").locator(".c-today")).to_have_text("12k tok · $0.42")
    budgets.tripped = 2
    hive.hub.publish("budget_tripped", agent="alice")  # any hive event refreshes the page
    link = page.get_by_role("link", name=re.compile("tripped budgets"))
    await expect(link).to_have_text("tripped budgets 2")
