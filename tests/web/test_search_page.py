"""The dashboard's search box in headless Chromium against a real core: hits with highlighted
snippets (text, never markup), links to the agent page at the event, filters, and a query
without a word shown as such; the API refuses bad parameters with the one error shape."""

from __future__ import annotations

from typing import Any, cast

import pytest
from playwright.async_api import expect

from hyperhive.core.hive import Hive
from hyperhive.core.search import SearchFeature
from hyperhive.harness.events import EventBus
from tests.web.conftest import DashClient, OpenPage

pytestmark = pytest.mark.browser


async def seed(hive: Hive) -> None:
    await hive.spawn("alice")
    await hive.broker.send("operator", "alice", "the <b>heron</b> plan, please")
    state = hive.paths.state_dir("alice")
    state.mkdir(parents=True, exist_ok=True)
    async with EventBus(state) as bus:
        bus.publish("turn_start", **{"from": "operator", "body": "start", "id": 1})
        bus.publish("text", text="heron plan drafted")
    await cast(SearchFeature, hive.feature("search")).index_now()


async def test_search_box_shows_highlighted_hits_with_links(
    dhive: Hive, open_page: OpenPage
) -> None:
    await seed(dhive)
    page = await open_page(dhive.dashboard_url)
    await page.fill("#search-q", "heron")
    await page.click("#search-form button[type=submit]")
    hits = page.locator("#search-list > li")
    await expect(hits).to_have_count(2)
    turn, message = hits.nth(0), hits.nth(1)  # newest first
    await expect(turn).to_have_attribute("data-kind", "turn")
    await expect(turn.locator("mark")).to_have_text(["heron"])
    href = await turn.locator("a.search-link").get_attribute("href")
    assert href is not None and href.startswith("/agent/alice/#event-")
    await expect(message).to_have_attribute("data-kind", "message")
    await expect(message.locator("mark")).to_have_text(["heron"])
    await expect(message.locator(".search-snippet")).to_contain_text("<b>")  # text, not markup
    await expect(message.locator("b")).to_have_count(0)
    await expect(message.locator("a.search-link")).to_have_attribute("href", "/agent/alice/")
    await expect(page.locator('[data-count="search"]')).to_have_text("2")

    await page.select_option("#search-kind", "message")
    await page.click("#search-form button[type=submit]")
    await expect(hits).to_have_count(1)
    await expect(hits.first).to_have_attribute("data-kind", "message")

    await page.fill("#search-q", "nothing-matches-this")
    await page.click("#search-form button[type=submit]")
    await expect(hits).to_have_count(0)
    await expect(page.locator("#search-empty")).to_be_visible()

    await page.fill("#search-q", "...")
    await page.click("#search-form button[type=submit]")
    await expect(page.locator("#search-error")).to_contain_text("nothing to search for")


async def test_search_api_validates_with_the_error_shape(dhive: Hive, client: DashClient) -> None:
    await seed(dhive)
    r = await client.get("/api/search", params={"q": "heron", "kind": "turn", "since": "1h"})
    body: dict[str, Any] = r.json()
    assert r.status_code == 200 and [h["kind"] for h in body["hits"]] == ["turn"]
    for params in (
        {},
        {"q": ""},
        {"q": "x", "kind": "bogus"},
        {"q": "x", "kind": ""},
        {"q": "x", "since": "soon"},
        {"q": "x", "since": ""},
        {"q": "x", "since": "1.5h"},
        {"q": "x", "limit": "zero"},
        {"q": "x", "limit": "0"},
        {"q": "x" * 501},
    ):
        r = await client.get("/api/search", params=params)
        body = r.json()
        assert r.status_code == 400, params
        assert body["ok"] is False and body["code"] == "bad_request" and body["error"]
    for agent in ("../etc", ""):
        r = await client.get("/api/search", params={"q": "x", "agent": agent})
        assert r.status_code == 400 and r.json()["code"] == "invalid_name"
    # no word in it: nothing matches, and the answer says why (the page shows it)
    r = await client.get("/api/search", params={"q": "... --"})
    body = r.json()
    assert (
        r.status_code == 200 and body["hits"] == [] and "nothing to search for" in body["message"]
    )
