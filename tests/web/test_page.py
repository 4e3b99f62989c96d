"""The dashboard page in headless Chromium against a real core (agents on the fake runtime):
badges, pending pills, questions, approvals, confirmations, logs, the live message flow."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from playwright.async_api import Dialog, expect

from hyperhive.client.agent import NO_RETRY, AgentClient
from hyperhive.core.hive import Hive
from hyperhive.core.logs import SOURCES
from hyperhive.errors import Unavailable
from hyperhive.runtime.fake import FakeWorld
from tests.support.waiting import eventually
from tests.web.conftest import OpenPage, expanded, fake_runtime

pytestmark = pytest.mark.browser


def row(page: Any, name: str) -> Any:
    return page.locator(f'#container-list > li[data-name="{name}"]')


async def settled_row(page: Any, name: str) -> Any:
    """The agent's row once shown with no action in flight (its actions are live)."""
    r = await expanded(page, name)
    await expect(r).not_to_contain_class("pending")
    return r


async def inbox_events(hive: Hive, name: str) -> list[dict[str, Any]]:
    rows = await hive.broker.recent(name, 50)
    return [json.loads(m.body) for m in rows if m.kind == "event"]


async def test_lists_agents_with_correct_badges(
    dhive: Hive, world: FakeWorld, open_page: OpenPage
) -> None:
    for name in ("alice", "bob", "carol"):
        await dhive.spawn(name)
    creds = dhive.paths.state_dir("alice") / ".claude" / ".credentials.json"
    creds.parent.mkdir(parents=True, exist_ok=True)
    creds.write_text("{}")
    fake_runtime(dhive, "bob").exit("bob", 1)  # bob crashes
    await dhive.registry.update("carol", paused=True)
    await dhive.crash_watch.tick()

    page = await open_page(dhive.dashboard_url)
    manager, alice, bob, carol = (row(page, n) for n in ("manager", "alice", "bob", "carol"))
    await expect(page.locator("#container-list > li")).to_have_count(4)
    await expect(page.locator("#container-list > li").first).to_have_attribute(
        "data-name", "manager"
    )
    await expect(manager.locator(".chip.role")).to_have_text("m1ndmanager")
    await expect(alice.locator(".chip.role")).to_have_text("ag3ntagent")
    # one state badge per agent: the fake runtime runs alice, but no harness reports yet
    await expect(alice.locator(".badge.state")).to_have_text("starting")
    await expect(alice.locator(".badge", has_text="needs login")).to_have_count(0)
    await expect(bob.locator(".badge", has_text="needs login")).to_have_count(1)
    await expect(bob.locator(".badge.state.bad")).to_have_text("crashed")
    await expect(bob.locator(".badge.state")).to_have_attribute("data-state", "crashed")
    await expect(bob).to_contain_class("failed stopped")
    await expect(carol.locator(".badge", has_text="paused")).to_have_count(1)
    await expanded(page, "carol")
    await expanded(page, "alice")
    await expect(carol.locator("button[data-action=unpause]")).to_be_visible()
    await expect(alice.locator(".meta-line .meta")).to_contain_text("model haiku")
    sha = dhive.configs.deployed_sha("alice")
    assert sha
    await expect(alice.locator(".meta-line .meta")).to_contain_text(sha[:12])
    link = alice.locator("a.page-link")
    await expect(link).to_have_attribute("href", "/agent/alice/")
    await expect(link).to_have_attribute("target", "_blank")
    await expect(link).to_have_attribute("rel", "noopener")
    # the manager cannot be destroyed: no destroy / purge on its row
    await expect(manager.locator("button", has_text="destroy")).to_have_count(0)
    await expect(alice.locator("button", has_text="destroy")).to_have_count(1)

    # a badge changes live: unpause carol from the page
    await carol.locator("button[data-action=unpause]").click()
    await expect(carol.locator(".badge", has_text="paused")).to_have_count(0)
    assert not dhive.registry.require("carol").paused


async def test_the_state_badge_follows_the_harness_live(dhive: Hive, page: Any) -> None:
    await dhive.spawn("alice")
    alice = await settled_row(page, "alice")
    badge = alice.locator(".badge.state")
    await expect(badge).to_have_text("starting")
    async with AgentClient(dhive.paths.agent_sock("alice"), retry=NO_RETRY) as harness:
        await harness.call("report_state", state="in_turn", tool="Bash")
        await expect(badge).to_have_text("in turn")
        await expect(alice.locator(".state-note")).to_have_text("running Bash")
        await harness.call("report_state", state="failed", note="API error 529: overloaded")
        await expect(alice.locator(".badge.state.bad")).to_have_text("failed")
        await expect(alice.locator(".state-note")).to_have_text("API error 529: overloaded")
        await harness.call("report_state", state="idle")
        await expect(alice.locator(".badge.state.ok")).to_have_text("idle")
        await expect(alice.locator(".state-note")).to_have_count(0)


async def test_restart_shows_the_pending_pill_then_clears(dhive: Hive, page: Any) -> None:
    await dhive.spawn("alice")
    alice = await settled_row(page, "alice")
    gate = asyncio.Event()
    rt = fake_runtime(dhive, "alice")
    original = rt.stop

    async def slow_stop(name: str, timeout: float = 30.0) -> Any:
        await gate.wait()
        return await original(name, timeout)

    rt.stop = slow_stop  # type: ignore[method-assign]
    button = alice.locator("button[data-action=restart]")
    await button.click()
    pill = alice.locator(".pill.pending")
    await expect(pill).to_have_text("◐ restarting…")
    await expect(alice).to_contain_class("pending")
    await expect(button).to_contain_class("busy")  # spinner while the request runs
    gate.set()
    await expect(pill).to_have_count(0)
    await expect(alice).not_to_contain_class("pending")
    await expect(page.locator(".toast").last).to_have_text("restarted alice")
    await expect(button).to_be_enabled()
    await expect(button).not_to_contain_class("busy")


async def test_multi_question_answered_with_two_checkboxes_and_text(dhive: Hive, page: Any) -> None:
    q = await dhive.questions.ask(
        "manager", "Which regions should we deploy?", ["eu", "us", "ap"], multi=True
    )
    qrow = page.locator(f'#question-list > li[data-id="{q.id}"]')
    await expect(qrow).to_be_visible()
    await expect(qrow.locator("input[type=checkbox]")).to_have_count(3)
    await expect(qrow.locator(".asker")).to_have_text("manager")
    await qrow.get_by_label("ap").check()
    await qrow.get_by_label("eu").check()
    await qrow.get_by_placeholder("or type your own…").fill("and canary first")
    await qrow.get_by_role("button", name="answer").click()
    await expect(qrow).to_have_count(0)
    await expect(page.locator(".toast").last).to_contain_text("eu, ap, and canary first")
    answered = [
        e for e in await inbox_events(dhive, "manager") if e["event"] == "operator_answered"
    ]
    assert answered == [
        {
            "event": "operator_answered",
            "id": q.id,
            "question": "Which regions should we deploy?",
            "answer": "eu, ap, and canary first",
        }
    ]


async def test_single_choice_question_uses_radio_buttons(dhive: Hive, page: Any) -> None:
    q = await dhive.questions.ask("manager", "Ship it?", ["yes", "no"])
    qrow = page.locator(f'#question-list > li[data-id="{q.id}"]')
    await expect(qrow.locator("input[type=radio]")).to_have_count(2)
    await expect(qrow.get_by_placeholder("or type your own…")).to_be_visible()
    await expect(qrow.locator(".chip.countdown")).to_have_count(0)  # no deadline: no chip


async def test_cancel_delivers_cancelled_after_a_confirm(dhive: Hive, page: Any) -> None:
    q = await dhive.questions.ask("manager", "Rotate the keys now?", ["yes", "no"])
    qrow = page.locator(f'#question-list > li[data-id="{q.id}"]')
    await expect(qrow).to_be_visible()
    seen: list[str] = []

    async def accept(dialog: Dialog) -> None:
        seen.append(dialog.message)
        await dialog.accept()

    page.once("dialog", accept)
    await qrow.get_by_role("button", name="cancel question").click()
    await expect(qrow).to_have_count(0)
    assert len(seen) == 1 and "manager will receive" in seen[0] and "[cancelled]" in seen[0]
    answered = [
        e for e in await inbox_events(dhive, "manager") if e["event"] == "operator_answered"
    ]
    assert [e["answer"] for e in answered] == ["[cancelled]"]


async def test_spawn_approval_approved_in_the_page_starts_the_agent(
    dhive: Hive, world: FakeWorld, page: Any
) -> None:
    # the operator's own request, from the R3QU3ST SP4WN form
    form = page.locator("#spawn-form")
    await form.get_by_placeholder("new-agent").fill("bob")
    await form.get_by_placeholder("what it is for (optional)").fill("a second pair of hands")
    await form.get_by_role("button", name="request spawn").click()
    arow = page.locator("#approval-list > li", has_text="bob")
    await expect(arow).to_be_visible()
    await expect(arow.locator(".chip.kind")).to_contain_text("sp4wn")
    await expect(arow.locator(".a-desc")).to_have_text("a second pair of hands")
    await expect(arow).to_contain_text("by operator")
    await arow.get_by_placeholder("note (optional)").fill("welcome")
    await arow.get_by_role("button", name="approve").click()
    await expect(arow).to_have_count(0)
    await expect(row(page, "bob").locator(".badge.state")).to_have_text("starting")
    assert world.agents["bob"].running
    await expect(page.locator(".toast").last).to_contain_text("approved")


async def test_deny_with_a_note(dhive: Hive, page: Any) -> None:
    a = await dhive.approvals.request_spawn("zed", requested_by="manager", description="why not")
    arow = page.locator(f'#approval-list > li[data-id="{a.id}"]')
    await arow.get_by_placeholder("note (optional)").fill("not today")
    await arow.get_by_role("button", name="deny").click()
    await expect(arow).to_have_count(0)
    got = await dhive.approvals.get(a.id)
    assert got.status == "denied" and got.note == "not today"
    assert dhive.registry.get("zed") is None


async def test_purge_asks_once_and_a_dismissed_dialog_changes_nothing(
    dhive: Hive, page: Any
) -> None:
    await dhive.spawn("alice")
    alice = await settled_row(page, "alice")
    asked: list[str] = []

    async def dismiss(dialog: Dialog) -> None:
        asked.append(dialog.message)
        await dialog.dismiss()

    page.on("dialog", dismiss)
    purge = alice.get_by_role("button", name="purge")
    await purge.click()
    await eventually(lambda: asked, what="the confirm dialog")
    await expect(purge).to_be_enabled()
    assert len(asked) == 1 and "no undo" in asked[0].lower()
    assert dhive.registry.get("alice") is not None
    assert dhive.paths.agent_dir("alice").exists()
    await expect(alice).to_be_visible()
    page.remove_listener("dialog", dismiss)

    # destroy (accepted) keeps the state: alice moves to kept state, where purge wipes it
    async def accept(dialog: Dialog) -> None:
        asked.append(dialog.message)
        await dialog.accept()

    page.on("dialog", accept)
    await alice.get_by_role("button", name="destroy").click()
    await expect(alice).to_have_count(0)
    kept = page.locator("#tombstone-list > li", has_text="alice")
    await expect(kept).to_be_visible()
    await expect(kept.get_by_role("button", name="revive")).to_be_visible()
    assert "kept" in asked[-1]
    await kept.get_by_role("button", name="purge").click()
    await expect(kept).to_have_count(0)
    assert "no undo" in asked[-1].lower()
    assert not dhive.paths.agent_dir("alice").exists()


async def test_revive_queues_a_spawn_approval(dhive: Hive, page: Any) -> None:
    await dhive.spawn("alice")
    await dhive.lifecycle.destroy("alice")
    kept = page.locator("#tombstone-list > li", has_text="alice")
    await expect(kept).to_be_visible()
    await expect(kept).to_contain_text("modified")
    await kept.get_by_role("button", name="revive").click()
    arow = page.locator("#approval-list > li", has_text="alice")
    await expect(arow.locator(".chip.kind")).to_contain_text("sp4wn")
    pending = await dhive.approvals.pending()
    assert [(a.agent, a.kind, a.requested_by) for a in pending] == [("alice", "spawn", "operator")]


async def test_logs_load_lazily_with_refresh_and_source(dhive: Hive, page: Any) -> None:
    await dhive.spawn("alice")
    logs = dhive.paths.logs_dir("alice")
    logs.mkdir(parents=True, exist_ok=True)
    (logs / "harness.log").write_text("".join(f"harness line {i}\n" for i in range(300)))
    (logs / SOURCES["sandbox"]).write_text("sandbox says hi\n")
    fetched: list[str] = []
    page.on("request", lambda r: fetched.append(r.url) if "/api/logs/" in r.url else None)
    alice = await expanded(page, "alice")
    out = alice.locator("pre.logs-out")
    await expect(out).to_be_hidden()
    assert fetched == []  # collapsed: nothing fetched
    await alice.locator("details.logs > summary").click()
    await expect(out).to_contain_text("harness line 299")
    assert len(fetched) == 1 and "source=harness" in fetched[0]
    # auto-scrolled to the bottom
    at_bottom = await out.evaluate("el => el.scrollTop + el.clientHeight >= el.scrollHeight - 2")
    assert at_bottom
    (logs / "harness.log").write_text("fresh line\n")
    await alice.get_by_role("button", name="refresh").click()
    await expect(out).to_have_text("fresh line")
    await alice.get_by_label("log source").select_option("sandbox")
    await expect(out).to_contain_text("sandbox says hi")
    assert len(fetched) == 3


async def test_message_flow_shows_a_send_within_a_second(dhive: Hive, page: Any) -> None:
    await dhive.spawn("alice")
    await dhive.broker.send("operator", "alice", "ping from the test")
    flow = page.locator("#flow-list > li", has_text="ping from the test")
    await expect(flow).to_be_visible(timeout=1000)
    await expect(flow.locator(".from")).to_have_text("operator")
    await expect(flow.locator(".to")).to_have_text("alice")
    await expect(page.locator("#flow-list > li").first).to_contain_text("ping from the test")
    await expect(page.locator("#banner")).to_contain_class("active")  # the shimmer


async def test_history_then_stream_shows_each_message_once(
    dhive: Hive, open_page: OpenPage
) -> None:
    await dhive.spawn("alice")
    await dhive.broker.send("operator", "alice", "before the page")
    page = await open_page(dhive.dashboard_url)
    await dhive.broker.send("operator", "alice", "after the page")
    await expect(page.locator("#flow-list > li", has_text="after the page")).to_have_count(1)
    await expect(page.locator("#flow-list > li", has_text="before the page")).to_have_count(1)
    # the backfilled row does not animate; the live one does
    await expect(page.locator("#flow-list > li", has_text="before the page")).to_contain_class(
        "no-anim"
    )
    await expect(page.locator("#flow-list > li", has_text="after the page")).not_to_contain_class(
        "no-anim"
    )


async def test_a_burst_of_messages_raises_one_row_at_a_time(dhive: Hive, page: Any) -> None:
    # ten rows rising together are ten composited animations in every open tab (software
    # compositing here): in a burst only the first rises, the others appear in place
    await dhive.spawn("alice")
    # the spawn's own messages (its kick, the manager's note) reach the page live and rise:
    # a marker sent after them is shown after them (events arrive in order); once nothing
    # is rising any more, the burst starts from a still list
    await dhive.broker.send("operator", "alice", "before the burst")
    await expect(page.locator("#flow-list > li", has_text="before the burst")).to_have_count(1)
    await page.wait_for_function(
        "document.querySelector('#flow-list').getAnimations({subtree: true}).length === 0"
    )
    await page.evaluate(
        """() => {
          window.__risingMax = 0;
          const list = document.querySelector('#flow-list');
          new MutationObserver(() => {
            const n = list.getAnimations({subtree: true}).filter((a) =>
              a.playState === 'running' && a.effect.target.classList.contains('frow')).length;
            window.__risingMax = Math.max(window.__risingMax, n);
          }).observe(list, {childList: true});
        }"""
    )
    for i in range(10):
        await dhive.broker.send("operator", "alice", f"burst {i}")
    for i in range(10):
        await expect(page.locator("#flow-list > li", has_text=f"burst {i}")).to_have_count(1)
    assert await page.evaluate("window.__risingMax") == 1
    first = page.locator("#flow-list > li", has_text="burst 0")
    await expect(first).not_to_contain_class("no-anim")


async def test_the_countdown_chip_ticks(dhive: Hive, page: Any) -> None:
    q = await dhive.questions.ask("manager", "Deploy before the window closes?", ttl_seconds=600)
    chip = page.locator(f'#question-list > li[data-id="{q.id}"] .chip.countdown')
    await expect(chip).to_have_text(_countdown_re(9))
    first = await chip.text_content()
    await expect(chip).not_to_have_text(first or "")
    await expect(chip).to_have_text(_countdown_re(9))


def _countdown_re(minutes: int) -> Any:
    import re

    return re.compile(rf"^⏳ {minutes}m \d\ds$")


async def test_inbox_shows_agent_messages_and_replies(dhive: Hive, page: Any) -> None:
    await dhive.spawn("alice")
    await dhive.broker.send("alice", "operator", "done with the report")
    irow = page.locator("#inbox-list > li", has_text="done with the report")
    await expect(irow).to_be_visible()
    await expect(irow).to_contain_class("unread")
    await irow.get_by_role("button", name="reply").click()
    await expect(page.locator("#reply-to")).to_have_value("alice")
    await expect(page.locator("#reply-body")).to_be_focused()
    await page.locator("#reply-body").fill("thanks, alice")
    await page.locator("#reply-form").get_by_role("button", name="send").click()
    await expect(page.locator(".toast").last).to_have_text("sent to alice")
    await expect(page.locator("#reply-body")).to_have_value("")
    got = await dhive.broker.recent("alice", 5)
    assert got[0].sender == "operator" and got[0].body == "thanks, alice"
    await page.get_by_role("button", name="mark all read").click()
    await expect(irow).not_to_contain_class("unread")
    assert await dhive.broker.unread("operator") == 0


async def test_an_error_shows_a_toast_and_reenables_the_button(dhive: Hive, page: Any) -> None:
    await dhive.spawn("alice")
    await dhive.lifecycle.stop_agent("alice")
    rt = fake_runtime(dhive, "alice")

    async def broken_start(spec: Any) -> Any:
        raise Unavailable("the sandbox tool is missing")

    rt.start = broken_start  # type: ignore[method-assign]
    alice = await settled_row(page, "alice")
    await expect(alice.locator(".badge.off")).to_have_text("stopped")
    button = alice.locator("button[data-action=start]")
    await button.click()
    await expect(page.locator(".toast.error").last).to_have_text("the sandbox tool is missing")
    await expect(button).to_be_enabled()
    await expect(button).not_to_contain_class("busy")


async def test_keyboard_reaches_every_action(dhive: Hive, page: Any) -> None:
    await dhive.spawn("alice")
    restart = (await settled_row(page, "alice")).locator("button[data-action=restart]")
    await restart.focus()
    await page.keyboard.press("Enter")
    await expect(page.locator(".toast").last).to_have_text("restarted alice")
