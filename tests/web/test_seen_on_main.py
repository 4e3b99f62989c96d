"""Issue #18's "seen on main", the dashboard's share: each test failed on the code the issue
was filed against. gzip (never on the event stream), /favicon.ico, the applied model, system
events in plain words, kill's confirmation, "1 reminder", plain words in every accessible name,
the section nav on a phone, toasts that leave the request-spawn button uncovered."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import httpx
import pytest
from playwright.async_api import Dialog, expect

from hyperhive.core.hive import Hive
from hyperhive.core.status import status_row
from hyperhive.runtime.fake import FakeWorld
from hyperhive.web.dashboard.views import event_words
from hyperhive.web.proxy import AgentProxy
from tests.support.browser import low_contrast
from tests.support.git import commit
from tests.support.waiting import eventually
from tests.web.conftest import DESKTOP, NARROW, DashClient, OpenPage, expanded, populate

# the hive's spellings: fine in a heading's look, never in what a screen reader announces
LEET = re.compile(
    r"HYP3RH1V3|c0re|C0NT41N3RS|K3PT|QU3ST10NS|1NB0X|4PPR0V|M3SS4G3|FL0W|S3ND|R3QU3ST|SP4WN"
    r"|D3NY|DESTR0Y|PURG3|R3V1V3|4NSW3R|m1nd|ag3nt|p4g3|r3bu1ld|c0nf1g|c0mm1t",
    re.IGNORECASE,
)
pytestmark = pytest.mark.browser


def row(page: Any, name: str) -> Any:
    return page.locator(f'#container-list > li[data-name="{name}"]')


# -- HTTP ---------------------------------------------------------------------------------------


async def test_html_js_and_json_are_gzipped_the_event_stream_is_not(
    dhive: Hive, client: DashClient
) -> None:
    gz = {"Accept-Encoding": "gzip"}
    for url in ("/", "/static/dashboard.js", "/static/dashboard.css", "/api/openapi.json"):
        r = await client.get(url, headers=gz)
        assert r.status_code == 200, url
        assert r.headers.get("content-encoding") == "gzip", url
        assert "accept-encoding" in r.headers.get("vary", "").lower(), url
    assert "paths" in (await client.get("/api/openapi.json", headers=gz)).json()  # decodes

    # the stream: never encoded, and each frame arrives on its own (not held in a buffer)
    since = dhive.hub.last_seq
    async with client.http.stream("GET", f"/dashboard/stream?since={since}", headers=gz) as resp:
        assert resp.headers.get("content-encoding") is None
        assert resp.headers["content-type"].startswith("text/event-stream")
        lines = resp.aiter_lines()

        async def frame_named(name: str) -> dict[str, Any]:
            event = None
            async for line in lines:
                if line.startswith("event:"):
                    event = line.split(":", 1)[1].strip()
                elif line.startswith("data:") and event == name:
                    data: dict[str, Any] = json.loads(line.split(":", 1)[1])
                    return data
            raise AssertionError("the stream ended")

        await frame_named("hello")
        dhive.hub.publish("probe", n=1)
        assert (await frame_named("hive"))["kind"] == "probe"


async def test_favicon_is_served(dhive: Hive, client: DashClient) -> None:
    r = await client.get("/favicon.ico")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("image/svg+xml")
    await dhive.spawn("alice")
    port = dhive.feature("agent_ports").port("alice")  # type: ignore[attr-defined]
    if port is not None:  # the agent's own port (when the machine had one free)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as agent:
            assert (await agent.get("/favicon.ico")).status_code == 200


async def test_status_and_pages_show_the_applied_model(dhive: Hive, client: DashClient) -> None:
    await dhive.spawn("alice")
    assert (await status_row(dhive, "alice")).active_model == "haiku"
    repo = dhive.configs.repo("alice").path
    sha = commit(repo, {"agent.toml": 'model = "sonnet"\n'}, "sonnet")
    await dhive.configs.apply("alice", sha)
    dhive.agent_configs.invalidate("alice")

    assert (await status_row(dhive, "alice")).active_model == "sonnet"
    state = (await client.get("/api/state")).json()
    alice = next(c for c in state["containers"] if c["name"] == "alice")
    assert alice["model"] == "sonnet"
    assert ">sonnet<" in AgentProxy(dhive).page_html("alice")  # the agent page's first paint


def test_system_events_read_as_plain_words() -> None:
    text = event_words(
        {
            "event": "approval_resolved",
            "id": 3,
            "agent": "bob",
            "kind": "spawn",
            "commit_ref": "",
            "status": "approved",
            "note": "welcome",
            "resolved_at": "2026-01-01T00:00:00Z",
        }
    )
    assert text == "approval resolved · #3 · bob · spawn · approved · welcome"
    assert event_words({"event": "kick", "note": "wake up", "sent_at": "x"}) == "kick · wake up"


# -- the page -----------------------------------------------------------------------------------


async def test_inbox_shows_system_events_without_json(dhive: Hive, page: Any) -> None:
    a = await dhive.approvals.request_spawn("zed", requested_by="operator", description="x")
    await dhive.approvals.deny(a.id, note="not today")
    irow = page.locator("#inbox-list > li.event", has_text="approval resolved")
    await expect(irow).to_have_count(1)
    body = await irow.locator(".body").inner_text()
    assert "{" not in body and "[approval_resolved]" not in body
    assert f"#{a.id}" in body and "denied" in body and "not today" in body


async def test_kill_asks_first_and_a_dismissed_dialog_changes_nothing(
    dhive: Hive, world: FakeWorld, page: Any
) -> None:
    await dhive.spawn("alice")
    alice = row(page, "alice")
    # one state badge per agent: the fake runtime runs alice, but no harness reports yet
    await expect(alice.locator(".badge.state")).to_have_text("starting")
    await expanded(page, "alice")
    asked: list[str] = []

    async def dismiss(dialog: Dialog) -> None:
        asked.append(dialog.message)
        await dialog.dismiss()

    page.on("dialog", dismiss)
    await alice.locator("button[data-action=kill]").click()
    await eventually(lambda: asked, what="the confirm dialog")
    assert "alice" in asked[0] and "at once" in asked[0]
    assert world.agents["alice"].running
    page.remove_listener("dialog", dismiss)

    async def accept(dialog: Dialog) -> None:
        await dialog.accept()

    page.on("dialog", accept)
    await alice.locator("button[data-action=kill]").click()
    await expect(alice.locator(".badge.off")).to_have_text("stopped")


async def test_one_reminder_is_singular(dhive: Hive, page: Any) -> None:
    await dhive.spawn("alice")
    await dhive.reminders.schedule("alice", "one", delay_seconds=3600)
    meta = (await expanded(page, "alice")).locator(".meta-line .meta")
    await expect(meta).to_contain_text("1 reminder")
    await expect(meta).not_to_contain_text("1 reminders")
    await dhive.reminders.schedule("alice", "two", delay_seconds=3600)
    await expect(meta).to_contain_text("2 reminders")


async def test_accessible_names_are_plain_words(dhive: Hive, page: Any) -> None:
    await dhive.spawn("alice")
    await dhive.approvals.request_spawn("zed", requested_by="operator", description="x")
    await expect(page.locator("#approval-list > li")).to_have_count(1)
    await expanded(page, "alice")
    tree = await page.locator("body").aria_snapshot()
    assert not LEET.findall(tree), LEET.findall(tree)
    for name in ("approve", "deny", "destroy", "purge", "request spawn", "send", "kill"):
        assert await page.get_by_role("button", name=name, exact=True).count() >= 1, name
    # the look stays where it is branding: the headings still show it
    await expect(page.locator("#h-approvals")).to_contain_text("4PPR0V4LS")


async def test_section_nav_on_a_phone_reaches_approvals(dhive: Hive, open_page: OpenPage) -> None:
    for i in range(12):
        await dhive.spawn(f"agent-{i}")
    page = await open_page(dhive.dashboard_url, viewport=NARROW)
    await expect(page.locator("#container-list > li")).to_have_count(13)
    nav = page.get_by_role("navigation", name="sections")
    await expect(nav).to_be_visible()
    link = nav.get_by_role("link", name="approvals")
    await link.scroll_into_view_if_needed()
    await link.click()
    await expect(page.locator("#h-approvals")).to_be_in_viewport()


async def test_toasts_leave_the_request_spawn_button_uncovered(
    dhive: Hive, open_page: OpenPage
) -> None:
    measure = """() => {
        const b = document.querySelector('#spawn-form button[type=submit]').getBoundingClientRect();
        const toasts = [...document.querySelectorAll('.toast')].map((t) => t.getBoundingClientRect());
        const hit = document.elementFromPoint(b.x + b.width / 2, b.y + b.height / 2);
        return {button: [b.x, b.y, b.width, b.height], toasts: toasts.map((t) => [t.x, t.y, t.width, t.height]),
                clickable: hit !== null && hit.closest('button') !== null && hit.closest('#spawn-form') !== null};
    }"""
    for viewport in (None, NARROW):
        page = await open_page(dhive.dashboard_url, viewport=viewport)
        form = page.locator("#spawn-form")
        button = form.get_by_role("button", name="request spawn")
        seen: dict[str, Any] = {"toasts": []}
        for i in range(5):  # toasts fade after 5 s: measure while this one shows
            await form.get_by_placeholder("new-agent").fill(f"new-{i}")
            await button.click()
            await expect(page.locator(".toast").last).to_be_visible()
            seen = await page.evaluate(measure)
            if seen["toasts"]:
                break
        assert seen["toasts"], "no toast to measure"
        bx, by, bw, bh = seen["button"]
        for tx, ty, tw, th in seen["toasts"]:
            assert tx + tw <= bx or bx + bw <= tx or ty + th <= by or by + bh <= ty, seen
        assert seen["clickable"]  # and the button takes clicks while they show
        for a in await dhive.approvals.pending():
            await dhive.approvals.deny(a.id)


async def test_every_visible_text_meets_aa_contrast(dhive: Hive, open_page: OpenPage) -> None:
    gate = await populate(dhive)
    restart = asyncio.ensure_future(dhive.lifecycle.restart("bob"))
    try:
        for viewport in (DESKTOP, NARROW):
            page = await open_page(dhive.dashboard_url, viewport=viewport)
            await expect(page.locator("#container-list > li")).to_have_count(6)
            await expect(page.locator('li[data-name="bob"] .pill.pending')).to_be_visible()
            await expect(page.locator("#flow-list > li", has_text="daily report")).to_be_visible()
            await page.emulate_media(reduced_motion="reduce")  # no fade-in half way
            await page.evaluate("document.getAnimations().forEach(a => a.finish())")
            bad = await low_contrast(page)
            assert not bad, bad
    finally:
        gate.set()
        await restart
