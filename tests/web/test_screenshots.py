"""A busy hive (every section populated, an action in flight) rendered desktop-wide and
phone-narrow; the full-page screenshots are saved to docs/screenshots/ for people to look at."""

from __future__ import annotations

import asyncio

import pytest
from playwright.async_api import expect

from hyperhive.core.hive import Hive
from tests.web.conftest import DESKTOP, NARROW, SCREENSHOTS, OpenPage, populate

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
            await page.locator('li[data-name="alice"] details.logs > summary').click()
            await expect(page.locator('li[data-name="alice"] pre.logs-out')).to_contain_text(
                "turn 39"
            )
            await page.emulate_media(reduced_motion="reduce")  # stable frames
            await page.screenshot(path=str(SCREENSHOTS / f"dashboard-{label}.png"), full_page=True)
            width = await page.evaluate("document.documentElement.scrollWidth")
            assert width <= viewport["width"], f"{label}: the page scrolls sideways ({width}px)"
    finally:
        gate.set()
        await restart
