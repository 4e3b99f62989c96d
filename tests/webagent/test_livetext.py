"""Live text on the agent page: assistant text and thinking shown as they stream (`partial`
bus events), each in one row updated in place, folded into the final row when it arrives; a
page opened mid-stream shows the text so far; nothing streaming is left after the turn."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import Page, expect

from hyperhive.harness.web import build_app, installed_page
from tests.support.webagent import FakeHarness, new_page, serve_tcp

pytestmark = pytest.mark.browser


@pytest.fixture
async def url(fake: FakeHarness) -> AsyncIterator[str]:
    async with serve_tcp(build_app(fake, installed_page())) as base:
        yield base + "/"


async def open_page(page: Page, url: str) -> None:
    await page.goto(url)
    await expect(page.locator("#conn")).to_have_class(re.compile(r"\bup\b"))


async def test_text_streams_then_folds_into_the_final_row(
    browser: Any, url: str, fake: FakeHarness
) -> None:
    async with new_page(browser) as page:
        await open_page(page, url)
        fake.start_turn()
        fake.bus.publish_live("partial", block="m1:0", part="thinking", text="The operator")
        thinking = page.locator("#live .k-partial.thinking")
        await expect(thinking).to_have_text(re.compile("The operator"))
        fake.bus.publish_live(
            "partial", block="m1:0", part="thinking", text="The operator wants a poem."
        )
        await expect(thinking).to_have_count(1)
        await expect(thinking).to_contain_text("The operator wants a poem.")
        fake.bus.publish("thinking", thinking="The operator wants a poem.", message_id="m1")
        await expect(thinking).to_have_count(0)
        await expect(page.locator("#live .k-thinking")).to_have_count(1)

        fake.bus.publish_live("partial", block="m1:1", part="text", text="Roses are")
        text = page.locator("#live .k-partial.text")
        await expect(text).to_contain_text("Roses are")
        await expect(text).to_have_attribute("aria-busy", "true")

        # a second page opened mid-stream shows the text so far
        async with new_page(browser) as late:
            await open_page(late, url)
            await expect(late.locator("#live .k-partial.text")).to_contain_text("Roses are")
            fake.bus.publish_live("partial", block="m1:1", part="text", text="Roses are red,")
            for p in (page, late):
                await expect(p.locator("#live .k-partial.text")).to_contain_text("Roses are red,")
                await expect(p.locator("#live .k-partial.text")).to_have_count(1)

            # the final row takes the live row's place: one row, the whole text
            fake.bus.publish("text", text="Roses are red, violets are blue.", message_id="m1")
            for p in (page, late):
                await expect(p.locator("#live .k-partial")).to_have_count(0)
                final = p.locator("#live .k-text", has_text="violets are blue")
                await expect(final).to_have_count(1)
                await expect(p.locator("#live .k-text", has_text="Roses are")).to_have_count(1)

        # a live row whose final never came (a cancelled turn) goes at the turn's end
        fake.bus.publish_live("partial", block="m2:0", part="text", text="half a sen")
        await expect(page.locator("#live .k-partial")).to_have_count(1)
        await fake.end_turn("cancelled")
        await expect(page.locator("#live .k-partial")).to_have_count(0)

    # live events never reach the event log: a reload shows the final rows only
    stored = await fake.bus.log.tail(100)
    assert not [e for e in stored if e.kind == "partial"]
