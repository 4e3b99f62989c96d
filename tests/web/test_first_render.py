"""The agent table arrives with the page and hidden tabs stay idle (issue #18, "dashboard speed
with 100 agents"; the figures are in docs/benchmarks.md, measured by
`scripts/bench_dashboard.py`, never asserted here).

- On main the table appeared only once the scripts had loaded and built every row: the page
  now carries the rows (`web/dashboard/firstpaint.py`), the script adopts them.
- Every event made every open tab fetch and render the state, background tabs too."""

from __future__ import annotations

import httpx
import pytest
from playwright.async_api import expect

from hyperhive.core.hive import Hive
from tests.web.conftest import OpenPage, agent_row

pytestmark = pytest.mark.browser


async def test_the_page_carries_the_agent_rows(dhive: Hive) -> None:
    await dhive.spawn("alice")
    await dhive.registry.update("alice", paused=True)  # her mail waits, unread
    await dhive.broker.send("manager", "alice", "waiting for you")
    async with httpx.AsyncClient(base_url=dhive.dashboard_url) as http:
        html = (await http.get("/")).text
    assert html.count('data-ssr aria-busy="false"') == 2  # the manager and alice
    row = html[html.index('data-name="alice"') :].split("</li>", 1)[0]
    assert 'aria-label="details for alice"' in row
    n = await dhive.broker.unread("alice")  # the message above, and the hive's own on spawn
    assert n >= 1
    assert f'<span class="badge info" title="{n} unread messages">{n} unread</span>' in row
    assert html.index('performance.mark("hh-table")') > html.index('data-name="alice"')


async def test_the_script_adopts_the_rows_and_keeps_them_live(
    dhive: Hive, open_page: OpenPage
) -> None:
    await dhive.spawn("alice")
    await dhive.registry.update("alice", paused=True)
    page = await open_page(dhive.dashboard_url)
    alice = agent_row(page, "alice")
    await expect(alice).to_have_count(1)
    handle = await alice.element_handle()
    assert await page.evaluate("performance.getEntriesByName('hh-table').length") == 1
    assert await page.evaluate("performance.getEntriesByName('hh-ready').length") == 1
    assert await page.locator("#container-list > li[data-ssr]").count() == 0  # all adopted
    # the same element, updated in place when the state changes
    n = await dhive.broker.unread("alice")
    await dhive.broker.send("manager", "alice", "one")
    await expect(alice.locator(".c-unread")).to_have_text(f"{n + 1} unread")
    assert await page.evaluate("(el) => el.isConnected", handle)
    await alice.locator(".expand").click()
    await expect(page.locator("#details-alice .actions")).to_be_visible()


HIDE = """(hidden) => {
  Object.defineProperty(document, "visibilityState", { configurable: true, get: () => hidden ? "hidden" : "visible" });
  document.dispatchEvent(new Event("visibilitychange"));
}"""


COUNT_FETCHES = """() => {
  window.__stateFetches = 0;
  const f = window.fetch;
  window.fetch = (url, opts) => {
    if (String(url).includes("/api/state")) window.__stateFetches += 1;
    return f(url, opts);
  };
}"""


async def test_a_hidden_tab_fetches_nothing_and_catches_up_when_shown(
    dhive: Hive, open_page: OpenPage
) -> None:
    await dhive.spawn("alice")
    await dhive.registry.update("alice", paused=True)
    page = await open_page(dhive.dashboard_url)
    await page.evaluate(COUNT_FETCHES)
    n = await dhive.broker.unread("alice")
    await page.evaluate(HIDE, True)
    await dhive.broker.send("manager", "alice", "while hidden")
    # the event itself still reaches the tab (its flow); a refresh, the one the event scheduled
    # or asked for at once, fetches nothing
    await expect(page.locator("#flow-list > li", has_text="while hidden")).to_have_count(1)
    await page.evaluate("() => window.hyperhive.refresh()")
    assert await page.evaluate("window.__stateFetches") == 0
    await page.evaluate(HIDE, False)
    await expect(agent_row(page, "alice").locator(".c-unread")).to_have_text(f"{n + 1} unread")
    assert await page.evaluate("window.__stateFetches") >= 1
