"""Issue #18's "seen on main", the agent page's share: each test failed on the code the issue
was filed against. The operator's echo rows above the turn they caused, a visible focus on the
prompt, Claude Code's pseudo-tags stripped, the "new output" strip clear of the log, the
favicon, AA contrast for every visible text, and any number of tabs on one stream."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, Route, expect

from tests.support.browser import low_contrast
from tests.support.waiting import eventually
from tests.support.webagent import NARROW, FakeHarness, enter, new_page, open_page, recorded_turn

pytestmark = pytest.mark.browser


async def order_of(page: Page, *selectors: str) -> list[int]:
    """Each selector's first match's position among the log's rows."""
    return [
        await page.evaluate(
            "(sel) => { const rows = [...document.querySelectorAll('#live .row')];"
            " return rows.indexOf(document.querySelector('#live ' + sel)); }",
            sel,
        )
        for sel in selectors
    ]


async def test_echo_rows_come_before_the_turn_they_caused(
    page: Page, url: str, fake: FakeHarness
) -> None:
    await open_page(page, url)

    # the turn's rows reach the page before the send's answer does (as with a fast agent)
    async def send_then_turn(route: Route) -> None:
        fake.start_turn(sender="operator", body="look around")
        await expect(page.locator("#live .k-turn_start")).to_have_count(1)
        await route.continue_()

    await page.route("**/send", send_then_turn)
    await enter(page, "look around")
    await expect(page.locator("#live .k-local.sent", has_text="(#")).to_have_count(1)
    echo, turn = await order_of(page, ".k-local.sent", ".k-turn_start")
    assert 0 <= echo < turn

    async def cancel_then_end(route: Route) -> None:
        fake.bus.publish("turn_end", ok=False, kind="cancelled", note="")
        await expect(page.locator("#live .k-turn_end")).to_have_count(1)
        await route.continue_()

    await page.route("**/api/cancel", cancel_then_end)
    await enter(page, "/cancel")
    await expect(page.locator("#live .k-local", has_text="cancel sent")).to_have_count(1)
    cancel, end = await order_of(page, ".k-local:not(.sent)", ".k-turn_end")
    assert 0 <= cancel < end


async def test_the_prompt_shows_focus(page: Page, url: str) -> None:
    await open_page(page, url)
    prompt = page.locator("#prompt")
    await page.locator("#live").focus()
    unfocused = await prompt.evaluate("f => getComputedStyle(f).boxShadow")
    await page.locator("#prompt-input").focus()
    focused = await prompt.evaluate("f => getComputedStyle(f).boxShadow")
    assert focused != "none" and focused != unfocused


async def test_cli_pseudo_tags_are_stripped(page: Page, url: str, fake: FakeHarness) -> None:
    await open_page(page, url)
    fake.bus.publish("tool_use", id="t1", name="Read", input={"file_path": "/nope"})
    fake.bus.publish(
        "tool_result",
        tool_use_id="t1",
        is_error=True,
        content="<tool_use_error>File does not exist.</tool_use_error>",
    )
    fake.bus.publish("user_text", text="<local-command-stdout>compacted</local-command-stdout>")
    result = page.locator("#live .k-tool_result")
    await expect(result).to_contain_text("File does not exist.")
    await expect(page.locator("#live .k-user_text")).to_have_text(re.compile("compacted"))
    text = await page.locator("#live").inner_text()
    assert "<tool_use_error>" not in text and "local-command-stdout" not in text


async def test_new_output_strip_never_covers_the_log(
    page: Page, url: str, fake: FakeHarness
) -> None:
    await open_page(page, url)
    for i in range(60):
        fake.bus.publish("text", text=f"line {i}")
    await expect(page.locator("#live .k-text", has_text="line 59")).to_have_count(1)
    live = page.locator("#live")
    await live.evaluate("e => { e.scrollTop = e.scrollHeight - e.clientHeight - 200; }")
    fake.bus.publish("tool_use", id="t9", name="Bash", input={"command": "seq 100"})
    fake.bus.publish("tool_result", tool_use_id="t9", content="\n".join(str(i) for i in range(100)))
    jump = page.locator("#jump")
    await expect(jump).to_be_visible()
    j, log = await jump.bounding_box(), await live.bounding_box()
    assert j is not None and log is not None
    assert j["y"] >= log["y"] + log["height"] - 1, (j, log)  # below the log, not over it
    await jump.click()
    show = page.locator("#live details.fold > summary").last
    await show.click()  # the "▸ show" is reachable
    await expect(page.locator("#live details.fold").last).to_have_attribute("open", "")


async def test_favicon_is_served(page: Page, url: str) -> None:
    failed: list[str] = []
    page.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)
    await open_page(page, url)
    href = await page.locator("link[rel=icon]").get_attribute("href")
    assert href
    async with httpx.AsyncClient(base_url=url) as http:
        assert (await http.get(href)).status_code == 200
        ico = await http.get("/favicon.ico")
        assert ico.status_code == 200 and ico.headers["content-type"].startswith("image/svg")
    assert not failed, failed


async def test_every_visible_text_meets_aa_contrast(
    browser: Any, url: str, fake: FakeHarness
) -> None:
    fake.start_turn()
    fake.play(recorded_turn())
    await fake.end_turn()
    fake.bus.publish("api_retry", attempt=1, max_retries=3, retry_delay_ms=500, error="overloaded")
    fake.bus.publish("note", text="a note from the harness")
    for viewport in (None, NARROW):
        async with new_page(browser, viewport or {"width": 1280, "height": 900}) as page:
            await open_page(page, url)
            await expect(page.locator("#stats-rows tr")).to_have_count(1)
            await enter(page, "/help")
            await expect(page.locator("#live .k-local.help").first).to_be_visible()
            await page.emulate_media(reduced_motion="reduce")
            await page.evaluate("document.getAnimations().forEach(a => a.finish())")
            bad = await low_contrast(page)
            assert not bad, bad


async def test_many_tabs_share_one_stream(browser: Any, url: str, fake: FakeHarness) -> None:
    ctx = await browser.new_context()
    streams: list[str] = []
    ctx.on("request", lambda r: streams.append(r.url) if "events/stream" in r.url else None)
    try:
        tabs = []
        for _ in range(8):  # more than the six connections HTTP/1.1 allows per host
            tab = await ctx.new_page()
            await open_page(tab, url)
            tabs.append(tab)
        assert len(streams) == 1, streams
        fake.bus.publish("text", text="seen by every tab")
        for tab in tabs:
            await expect(tab.locator("#live .k-text", has_text="seen by every tab")).to_have_count(
                1
            )
        # and every tab's request is answered
        await asyncio.gather(*(enter(tab, "/cancel") for tab in tabs))
        for tab in tabs:
            await expect(tab.locator("#live .k-local", has_text="nothing to cancel")).to_have_count(
                1
            )
        await eventually(lambda: fake.cancels == len(tabs), what="every tab's cancel")
    finally:
        await ctx.close()
