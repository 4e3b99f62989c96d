"""A busy hive (every section populated, an action in flight), a hive of one agent and one of a
hundred, rendered desktop-wide and phone-narrow; the screenshots are saved to docs/screenshots/
for people to look at (with HIVE_UPDATE_SCREENSHOTS=1)."""

from __future__ import annotations

import asyncio

import pytest
from playwright.async_api import expect

from hyperhive.client.agent import NO_RETRY, AgentClient
from hyperhive.clock import iso
from hyperhive.core.hive import Hive
from tests.support.browser import full_page_screenshot
from tests.web.conftest import (
    DESKTOP,
    NARROW,
    SCREENSHOTS,
    OpenPage,
    expanded,
    fake_runtime,
    populate,
)

pytestmark = pytest.mark.browser


async def test_full_page_screenshots(dhive: Hive, open_page: OpenPage) -> None:
    gate = await populate(dhive)
    restart = asyncio.ensure_future(dhive.lifecycle.restart("bob"))
    try:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for label, viewport in (("desktop", DESKTOP), ("narrow", NARROW)):
            page = await open_page(dhive.dashboard_url, viewport=viewport)
            await expect(page.locator("#container-list > li")).to_have_count(6)
            await expect(page.locator('li[data-name="bob"] .pill.pending')).to_be_visible()
            await expect(page.locator("#approval-list .hh-diff")).to_be_visible()
            await expect(page.locator("#flow-list > li", has_text="daily report")).to_be_visible()
            # open one logs block so the shot shows it
            logs = dhive.paths.logs_dir("alice")
            logs.mkdir(parents=True, exist_ok=True)
            (logs / "harness.log").write_text(
                "".join(f"2026-05-01T10:{i:02d}:00Z turn {i}: ok\n" for i in range(40))
            )
            await expanded(page, "alice")
            await page.locator('li[data-name="alice"] details.logs > summary').click()
            await expect(page.locator('li[data-name="alice"] pre.logs-out')).to_contain_text(
                "turn 39"
            )
            await page.emulate_media(reduced_motion="reduce")  # stable frames
            await full_page_screenshot(page, SCREENSHOTS / f"dashboard-{label}.png")
            width = await page.evaluate("document.documentElement.scrollWidth")
            assert width <= viewport["width"], f"{label}: the page scrolls sideways ({width}px)"
            # every name is whole, also beside a state of three badges (carol: paused, needs
            # login, needs update; bob: restarting) on a phone: they squeezed it to "c…" and ""
            cut = await page.evaluate(NAMES_CUT)
            assert cut == [], f"{label}: names cut short: {cut}"
    finally:
        gate.set()
        await restart


NAMES_CUT = """() => Array.from(document.querySelectorAll('#container-list > li .c-name .name'))
  .filter(el => el.clientWidth === 0 || el.scrollWidth > el.clientWidth)
  .map(el => el.textContent)"""


async def test_one_agent_screenshots(dhive: Hive, open_page: OpenPage) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for label, viewport in (("desktop", DESKTOP), ("phone", NARROW)):
        page = await open_page(dhive.dashboard_url, viewport=viewport)
        await expect(page.locator("#container-list > li")).to_have_count(1)
        await expect(page.locator("#attention-calm")).to_be_visible()
        await page.emulate_media(reduced_motion="reduce")
        await page.screenshot(path=str(SCREENSHOTS / f"dashboard-1-agent-{label}.png"))
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= viewport["width"], f"{label}: the page scrolls sideways ({width}px)"


async def test_hundred_agents_screenshots(dhive: Hive, open_page: OpenPage) -> None:
    """A hundred agents: some in a turn (with their tool), one crashed, one asking, unread mail."""
    names = [f"agent-{i:02d}" for i in range(99)]
    for name in names:
        await dhive.spawn(name)
    fake_runtime(dhive, "agent-07").exit("agent-07", 1)
    await dhive.crash_watch.tick()
    await dhive.questions.ask("agent-12", "Deploy the canary to eu-west now?", ["yes", "no"])
    await dhive.approvals.request_spawn("indexer", requested_by="manager", description="search")
    await dhive.broker.send("agent-03", "operator", "the nightly build is green again")
    started = iso(dhive.clock.now() - 42)
    harnesses = []
    try:
        for name, tool in (("agent-00", "Bash"), ("agent-01", "Edit"), ("agent-02", "Read")):
            h = AgentClient(dhive.paths.agent_sock(name), retry=NO_RETRY)
            await h.__aenter__()
            harnesses.append(h)
            await h.call("report_state", state="in_turn", turn_started_at=started)
            await h.call("report_state", state="in_turn", tool=tool)
        for name in names[3:40]:
            h = AgentClient(dhive.paths.agent_sock(name), retry=NO_RETRY)
            await h.__aenter__()
            harnesses.append(h)
            await h.call("report_state", state="idle")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for label, viewport in (("desktop", DESKTOP), ("phone", NARROW)):
            page = await open_page(dhive.dashboard_url, viewport=viewport)
            await expect(page.locator("#container-list > li")).to_have_count(100)
            await expect(page.locator(".turn-for")).to_have_count(3)
            await expect(page.locator("#attention .att")).to_have_count(4)
            await page.emulate_media(reduced_motion="reduce")
            await page.screenshot(path=str(SCREENSHOTS / f"dashboard-100-agents-{label}.png"))
            width = await page.evaluate("document.documentElement.scrollWidth")
            assert width <= viewport["width"], f"{label}: the page scrolls sideways ({width}px)"
    finally:
        for h in harnesses:
            await h.__aexit__(None, None, None)
