"""A dashboard search hit opens the agent page at that event: the harness's own event store
(fed with a recorded Claude Code turn) is indexed by the core's turn indexer, and the hit's
`#event-N` link marks and scrolls to that row in headless Chromium; an event older than the
page's history gets a note instead."""

from __future__ import annotations

import re
from typing import Any, cast

import pytest
from playwright.async_api import Page, expect

from hyperhive.core.hive import Hive
from hyperhive.core.search import SearchFeature
from hyperhive.core.turnindex import index_agent
from hyperhive.wire.search import SearchFields
from tests.support.waiting import eventually
from tests.support.webagent import FakeHarness, recorded_turn

pytestmark = pytest.mark.browser


async def test_a_turn_hit_links_to_its_row(
    page: Page, url: str, fake: FakeHarness, alice_hive: Hive
) -> None:
    fake.start_turn(body="please look around")
    fake.play(recorded_turn())
    await fake.end_turn()
    feature = cast(SearchFeature, alice_hive.feature("search"))
    state = fake.opts.state_dir

    async def indexed() -> list[Any]:
        await index_agent(feature.store, "alice", state)
        found = await feature.search(SearchFields(query="workspace", kinds=["turn"]))
        return found.hits if len(found.hits) == 2 else []

    hits = cast(list[Any], await eventually(indexed, what="the recorded turn indexed"))
    first = hits[1]  # "Let me look at the workspace first." (older of the two)
    assert first.link == f"/agent/alice/#event-{first.ref}"
    anchor = first.link.split("#", 1)[1]

    await page.goto(f"{url}#{anchor}")
    await expect(page.locator("#conn")).to_have_class(re.compile(r"\bup\b"))
    target = page.locator("#live .row.target")
    await expect(target).to_have_count(1)
    await expect(target).to_have_attribute("data-id", str(first.ref))
    await expect(target).to_contain_text("Let me look at the workspace first.")
    await expect(target).to_be_in_viewport()

    await page.goto(f"{url}#event-999999")
    await page.reload()
    await expect(page.locator("#live .target-missing")).to_contain_text("event #999999")
