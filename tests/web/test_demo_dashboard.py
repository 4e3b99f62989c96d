"""`hive demo`'s hive driven from the dashboard in Chromium: real Claude Code in bubblewrap
sandboxes against the scripted model, every section live (a crash, a question, a spawn and a
config change with its diff), then the operator acts from the page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.async_api import Dialog, expect

from hyperhive.demo import demo_hive, play
from hyperhive.runtime.choose import sandbox_support
from tests.support.browser import full_page_screenshot
from tests.web.conftest import NARROW, SCREENSHOTS, OpenPage, expanded

pytestmark = [pytest.mark.slow, pytest.mark.sandbox, pytest.mark.browser]

LONG = 120_000  # ms: a real sandbox start and a real claude turn take seconds

# a running agent's derived state (the harness may not have reported yet)
RUNNING = re.compile(r"^(starting|unknown|idle|in turn|compacting|waiting for operator)$")


async def test_demo_scenario_in_the_dashboard(
    short_tmp: Path, open_page: OpenPage, monkeypatch: pytest.MonkeyPatch
) -> None:
    if (why := sandbox_support()) is not None:
        pytest.skip(f"needs bubblewrap: {why}")
    monkeypatch.setenv("HIVE_DASHBOARD", "127.0.0.1:0")  # never the shared port 7000
    async with demo_hive(short_tmp / "h", "bwrap") as (hive, sim):
        milestones = await play(hive, timeout=300)
        assert not milestones.missing()
        page = await open_page(hive.dashboard_url)

        # containers: the manager runs, alice crashed
        manager = page.locator('#container-list > li[data-name="manager"]')
        alice = page.locator('#container-list > li[data-name="alice"]')
        await expect(manager.locator(".badge.state")).to_have_text(RUNNING)
        await expect(manager.locator(".chip.role")).to_have_text("m1ndmanager")
        await expect(alice.locator(".badge.state.bad")).to_have_text("crashed", timeout=LONG)

        # inbox: the manager's report and its crash notice
        inbox = page.locator("#inbox-list")
        await expect(inbox.locator("li", has_text="alice reports")).to_be_visible()
        await expect(inbox.locator("li", has_text="alice crashed")).to_be_visible()

        # logs of the real harness, fetched when opened (in the row's details)
        await expanded(page, "manager")
        await manager.locator("details.logs > summary").click()
        await expect(manager.locator("pre.logs-out")).not_to_have_text(
            re.compile(r"^(loading…|\(no output yet\))$")
        )

        # the flow: the whole conversation, newest first
        flow = page.locator("#flow-list")
        await expect(flow.locator("li", has_text="status: all tests green")).to_be_visible()
        await expect(flow.locator("li", has_text="container_crash")).to_be_visible()

        # approvals: the spawn and the config change with its diff
        spawn = page.locator("#approval-list > li", has_text="sp4wn")
        change = page.locator("#approval-list > li", has_text="4pply c0mm1t")
        await expect(spawn).to_contain_text("bob")
        await expect(change.locator(".hh-diff")).to_contain_text('+model = "sonnet"')

        # the question, with its ticking deadline
        question = page.locator("#question-list > li", has_text="second worker")
        await expect(question.locator(".chip.countdown")).to_have_text(re.compile(r"^⏳ \d+m"))

        await full_page_screenshot(page, SCREENSHOTS / "dashboard-demo-desktop.png")
        narrow = await open_page(hive.dashboard_url, viewport=NARROW)
        await expect(narrow.locator("#question-list > li")).to_have_count(1)
        await full_page_screenshot(narrow, SCREENSHOTS / "dashboard-demo-narrow.png")
        await narrow.context.close()

        # the operator answers: the manager gets it in its inbox
        await question.get_by_label("yes, spawn bob").check()
        await question.get_by_placeholder("or type your own…").fill("keep him on tests")
        await question.get_by_role("button", name="answer").click()
        await expect(question).to_have_count(0)
        answers = [m.body for m in await hive.broker.recent("manager", 50) if m.kind == "event"]
        assert any("yes, spawn bob, keep him on tests" in b for b in answers)

        # approves the spawn: bob starts in a real sandbox
        await spawn.get_by_role("button", name="approve").click()
        bob = page.locator('#container-list > li[data-name="bob"]')
        await expect(bob.locator(".badge.state")).to_have_text(RUNNING, timeout=LONG)

        # approves alice's config change: she is rebuilt on it and runs again
        await change.get_by_role("button", name="approve").click()
        await expect(change).to_have_count(0, timeout=LONG)
        await expect(alice.locator(".badge.state")).to_have_text(RUNNING, timeout=LONG)
        await expect(alice.locator(".badge.state.bad")).to_have_count(0, timeout=LONG)
        assert hive.agent_configs.get("alice").model == "sonnet"

        # destroys bob, confirming once: his state is kept
        asked: list[str] = []

        async def accept(dialog: Dialog) -> None:
            asked.append(dialog.message)
            await dialog.accept()

        page.on("dialog", accept)
        await expanded(page, "bob")
        await bob.get_by_role("button", name="destroy").click()
        await expect(bob).to_have_count(0, timeout=LONG)
        await expect(page.locator("#tombstone-list > li", has_text="bob")).to_be_visible()
        assert len(asked) == 1
        used = {r.rule_id for r in sim.requests}  # the scripted model served every turn
        assert {"manager-requests-apply", "alice-crashes"} <= used
