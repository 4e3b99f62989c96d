"""A busy hive (every section populated, an action in flight) rendered desktop-wide and
phone-narrow; the full-page screenshots are saved to docs/screenshots/ for people to look at."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from playwright.async_api import expect

from hyperhive.clock import iso
from hyperhive.core.hive import Hive
from tests.support.git import commit
from tests.web.conftest import DESKTOP, NARROW, SCREENSHOTS, OpenPage, fake_runtime

pytestmark = pytest.mark.browser


async def populate(hive: Hive) -> asyncio.Event:
    """Fill every section; returns the gate holding bob's restart in flight."""
    for name in ("alice", "bob", "carol", "dave", "erin"):
        await hive.spawn(name)
    now = iso(hive.clock.now())
    await hive.registry.update("manager", status_text="triaging the backlog", status_set_at=now)
    await hive.registry.update(
        "alice", status_text="refactoring the parser (3/5 files)", status_set_at=now
    )
    creds = hive.paths.state_dir("alice") / ".claude" / ".credentials.json"
    creds.parent.mkdir(parents=True, exist_ok=True)
    creds.write_text("{}")
    fake_runtime(hive, "dave").exit("dave", 1)
    await hive.registry.update("carol", paused=True)
    hive.lifecycle.built_rev["carol"] = "an-older-config"
    await hive.crash_watch.tick()

    # kept state
    await hive.spawn("frank")
    (hive.paths.state_dir("frank") / "notes.md").write_text("# notes\n" * 400)
    await hive.lifecycle.destroy("frank")

    # questions
    await hive.questions.ask(
        "manager",
        "alice and bob both want the staging database this afternoon. Who goes first?",
        ["alice", "bob", "neither: wait for tomorrow"],
        ttl_seconds=1500,
    )
    await hive.questions.ask(
        "erin",
        "Which regions should the canary run in?",
        ["eu-west", "us-east", "ap-south"],
        multi=True,
    )

    # approvals: a spawn and a config change with a diff
    await hive.approvals.request_spawn(
        "gina", requested_by="manager", description="a reviewer for alice's pull requests"
    )
    repo = hive.configs.repo("alice").path
    text = (repo / "agent.toml").read_text()
    sha = commit(
        repo,
        {"agent.toml": text + '\nmodel = "sonnet"\nallowed_recipients = ["manager", "bob"]\n'},
        "alice: bigger model, may talk to bob",
    )
    await hive.approvals.request_apply_commit(
        "alice", sha, requested_by="manager", description="alice needs sonnet for the parser work"
    )

    # inbox and traffic
    await hive.broker.send("manager", "alice", "please take the parser refactor")
    await hive.broker.send("alice", "manager", "on it; 3 of 5 files done")
    await hive.broker.send("manager", "operator", "daily report: 4 agents busy, 1 crashed (dave)")
    await hive.broker.send("erin", "operator", "the canary is ready whenever you are")
    await hive.broker.send("operator", "erin", "thanks, waiting for the window")
    await hive.broker.system_event("manager", "container_crash", agent="dave", exit_code=1)

    # bob's restart stays in flight until the gate opens
    gate = asyncio.Event()
    rt = fake_runtime(hive, "bob")
    original = rt.stop

    async def slow_stop(name: str, timeout: float = 30.0) -> Any:
        await gate.wait()
        return await original(name, timeout)

    rt.stop = slow_stop  # type: ignore[method-assign]
    return gate


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
