"""Any number of dashboard tabs stay live: ten tabs in one browser share one event stream
(`static/sharedstream.js`), every tab receives every event and every tab's action is answered.

On main each tab held its own stream; Chromium allows six HTTP/1.1 connections per host, so
the seventh tab never finished loading. (How fast the answers come is measured by
`scripts/bench_tabs.py`, not asserted here.)"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import expect

from hyperhive.core.hive import Hive
from tests.support.waiting import eventually

pytestmark = pytest.mark.browser
TABS = 10


@pytest.fixture
async def context(browser: Any) -> AsyncIterator[Any]:
    ctx = await browser.new_context(viewport={"width": 1200, "height": 800})
    errors: list[str] = []
    ctx.on("weberror", lambda e: errors.append(str(e.error)))
    try:
        yield ctx
    finally:
        with contextlib.suppress(Exception):
            await ctx.close()
    assert not errors, errors


async def open_tabs(context: Any, url: str, n: int) -> list[Any]:
    tabs = []
    for _ in range(n):  # one after the other, as an operator opens them
        tab = await context.new_page()
        await tab.goto(url)
        await expect(tab.locator("#conn")).to_have_class("conn live", timeout=20_000)
        tabs.append(tab)
    return tabs


async def test_ten_tabs_share_one_stream_and_all_stay_live(dhive: Hive, context: Any) -> None:
    streams: list[str] = []
    context.on("request", lambda r: streams.append(r.url) if "/dashboard/stream" in r.url else None)
    tabs = await open_tabs(context, dhive.dashboard_url, TABS)
    assert len(streams) == 1, streams  # one stream for the whole browser

    # every tab sees a message sent after it loaded
    await dhive.broker.send("manager", "operator", "hello, every tab")
    for tab in tabs:
        await expect(tab.locator("#flow-list > li", has_text="hello, every tab")).to_have_count(1)

    # every tab's action gets its answer (a reply from each tab to the manager)
    for i, tab in enumerate(tabs):
        await tab.locator("#reply-body").fill(f"reply from tab {i}")
    await asyncio.gather(
        *(tab.locator("#reply-form").get_by_role("button", name="send").click() for tab in tabs)
    )
    for tab in tabs:  # the form is cleared once the core answered (toasts fade: not those)
        await expect(tab.locator("#reply-body")).to_have_value("")

    async def delivered() -> bool:
        rows = await dhive.broker.recent("manager", 50)
        bodies = {m.body for m in rows if m.sender == "operator"}
        return all(f"reply from tab {i}" in bodies for i in range(TABS))

    await eventually(delivered, what="every tab's reply in the manager's inbox")
    # and each tab shows every reply in its flow: the shared stream reached them all
    for tab in tabs:
        await expect(tab.locator("#flow-list > li", has_text="reply from tab")).to_have_count(TABS)


async def test_closing_the_leading_tab_hands_the_stream_over(dhive: Hive, context: Any) -> None:
    streams: list[str] = []
    context.on("request", lambda r: streams.append(r.url) if "/dashboard/stream" in r.url else None)
    first, *rest = await open_tabs(context, dhive.dashboard_url, 3)
    assert len(streams) == 1
    await first.close()  # the tab that held the stream (it was the first to ask)
    await eventually(lambda: len(streams) == 2, what="another tab to open the stream")
    assert "since=" in streams[1]
    await dhive.broker.send("manager", "operator", "after the hand-over")
    for tab in rest:
        await expect(tab.locator("#flow-list > li", has_text="after the hand-over")).to_have_count(
            1
        )
