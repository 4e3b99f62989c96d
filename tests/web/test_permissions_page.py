"""The dashboard's tool permission section in headless Chromium against a real core: a
parked `ask_permission` shows (tool, input, agent, why), and the operator allows it, allows it
always, or denies it with a note — the parked ask gets exactly that answer."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from playwright.async_api import expect

from hyperhive.client.agent import NO_RETRY, AgentClient
from hyperhive.core.hive import Hive
from hyperhive.core.permissions import PermissionsFeature
from tests.support.browser import low_contrast
from tests.support.waiting import eventually
from tests.web.conftest import DESKTOP, NARROW, SCREENSHOTS, OpenPage

pytestmark = pytest.mark.browser


def ask(hive: Hive, client: AgentClient, key: str, command: str) -> asyncio.Task[dict[str, Any]]:
    return asyncio.create_task(
        client.request(
            {
                "cmd": "ask_permission",
                "tool": "Bash",
                "input": {"command": command, "description": "publish the release\nto origin"},
                "reason": "rule",
                "rule": "Bash(git push:*)",
                "key": key,
                "harness": "run1",
            }
        )
    )


async def pending_id(hive: Hive) -> int:
    feature = hive.feature("permissions")
    assert isinstance(feature, PermissionsFeature)

    async def first() -> int | None:
        rows = await feature.pending()
        return rows[0].id if rows else None

    pid = await eventually(first, what="a pending permission request")
    assert isinstance(pid, int)
    return pid


async def test_allow_once_and_deny_with_a_note(dhive: Hive, page: Any) -> None:
    await dhive.spawn("alice")
    async with AgentClient(dhive.paths.agent_sock("alice"), retry=NO_RETRY) as alice:
        parked = ask(dhive, alice, "k1", "git push origin main")
        pid = await pending_id(dhive)
        prow = page.locator(f'#permission-list > li[data-id="{pid}"]')
        await expect(prow).to_be_visible()
        await expect(prow.locator(".asker")).to_have_text("alice")
        await expect(prow.locator(".p-summary")).to_have_text("Bash(git push origin main)")
        await expect(prow.locator(".p-reason")).to_have_text("why: rule")
        await expect(prow.locator(".p-input pre")).to_have_text("publish the release\nto origin")
        await expect(prow.locator(".chip.kind")).to_have_text("Bash(git push:*)")
        await expect(page.locator('[data-count="permissions"]')).to_have_text("· 1")
        # the agent's row shows it waiting for the operator
        await expect(page.locator('#container-list > li[data-name="alice"]')).to_contain_text(
            "waiting for operator"
        )
        await prow.get_by_role("button", name="allow once").click()
        await expect(prow).to_have_count(0)
        await expect(page.locator(".toast").last).to_contain_text(f"#{pid} allowed")
        answer = await asyncio.wait_for(parked, 30)
        assert answer["behavior"] == "allow"

        parked = ask(dhive, alice, "k2", "git push --force")
        pid = await pending_id(dhive)
        prow = page.locator(f'#permission-list > li[data-id="{pid}"]')
        await prow.get_by_label(f"note for permission {pid}").fill("no force pushes, ever")
        await prow.get_by_role("button", name="deny").click()
        await expect(prow).to_have_count(0)
        answer = await asyncio.wait_for(parked, 30)
        assert (answer["behavior"], answer["note"]) == ("deny", "no force pushes, ever")
        await expect(page.locator("#permissions [data-empty]")).to_be_visible()


async def test_allow_always_keeps_the_rule(dhive: Hive, page: Any) -> None:
    await dhive.spawn("alice")
    async with AgentClient(dhive.paths.agent_sock("alice"), retry=NO_RETRY) as alice:
        parked = ask(dhive, alice, "k1", "git push origin main")
        pid = await pending_id(dhive)
        prow = page.locator(f'#permission-list > li[data-id="{pid}"]')
        await prow.get_by_role("button", name="allow always").click()
        await expect(page.locator(".toast").last).to_contain_text(
            "kept: Bash(git push origin main)"
        )
        assert (await asyncio.wait_for(parked, 30))["behavior"] == "allow"
        again = await asyncio.wait_for(ask(dhive, alice, "k2", "git push origin main"), 30)
        assert again["behavior"] == "allow"
    await expect(page.locator("#permission-list > li")).to_have_count(0)


async def test_the_section_reads_well(dhive: Hive, open_page: OpenPage) -> None:
    """Every text of a pending request meets AA contrast, at desktop and phone widths (and is
    pictured for the docs)."""
    await dhive.spawn("alice")
    async with AgentClient(dhive.paths.agent_sock("alice"), retry=NO_RETRY) as alice:
        parked = ask(dhive, alice, "k1", "git push origin main")
        pid = await pending_id(dhive)
        for viewport, name in ((DESKTOP, "desktop"), (NARROW, "narrow")):
            page = await open_page(dhive.dashboard_url, viewport=viewport)
            prow = page.locator(f'#permission-list > li[data-id="{pid}"]')
            await expect(prow).to_be_visible()
            await page.emulate_media(reduced_motion="reduce")
            await page.evaluate("document.getAnimations().forEach(a => a.finish())")
            bad = await low_contrast(page)
            assert not bad, bad
            await prow.screenshot(path=str(SCREENSHOTS / f"permission-{name}.png"))
        feature = dhive.feature("permissions")
        assert isinstance(feature, PermissionsFeature)
        await feature.decide(pid, "allow")
        await asyncio.wait_for(parked, 30)
