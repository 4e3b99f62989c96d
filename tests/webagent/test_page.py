"""The agent page in headless Chromium against the harness's web app over a real event bus fed
with a recorded Claude Code turn (the slow end-to-end tests run the real harness)."""

from __future__ import annotations

import asyncio
import contextlib
import re
from typing import Any

import pytest
from playwright.async_api import Page, Route, expect

from hyperhive.core.hive import Hive
from hyperhive.harness.web import build_app
from tests.support.waiting import eventually
from tests.support.webagent import (
    NARROW,
    FakeHarness,
    enter,
    new_page,
    open_page,
    recorded_turn,
    serve_tcp,
)

pytestmark = pytest.mark.browser

SHOWN = {"thinking", "text", "tool_use", "tool_result"}  # of the recorded turn's kinds


def row_with(page: Page, cls: str, text: str) -> Any:
    return page.locator(f"#live .{cls}", has_text=text)


async def test_mid_turn_page_shows_history_and_active_banner(
    page: Page, url: str, fake: FakeHarness, alice_hive: Hive
) -> None:
    for body in ("one", "two"):  # what the core counts as unread is what the header shows
        await alice_hive.broker.send("manager", "alice", body)
    fake.start_turn()
    fake.play(recorded_turn())
    await open_page(page, url)

    banner = page.locator("#banner")
    await expect(banner).to_have_class(re.compile(r"\bactive\b"))
    await expect(page.locator("#state")).to_have_text("thinking")
    await expect(page.locator("#unread")).to_have_text("· 2 unread")
    await expect(page.locator("#unread")).to_be_visible()

    start = row_with(page, "k-turn_start", "operator")
    await expect(start).to_contain_text("woke me")
    await expect(start).to_contain_text("2 unread")
    await expect(page.locator("#live .k-turn_body")).to_have_text("please look around")
    await expect(row_with(page, "k-thinking", "The operator wants a look around")).to_have_count(1)
    bash = row_with(page, "k-tool_use", "Bash")
    await expect(bash).to_contain_text("Bash $ seq 1 40 | sed 's/^/line /' && ls -la")
    # the Bash output (43 lines) is folded; a short result is inline; an error is marked
    fold = page.locator("#live .k-tool_result details.fold")
    await expect(fold).to_have_count(1)
    await expect(fold.first).not_to_have_attribute("open", "")
    await expect(fold.first.locator("summary")).to_contain_text("line 1 · 43 lines")
    await expect(fold.first.locator("pre")).to_be_hidden()
    await expect(row_with(page, "k-tool_use", "Read")).to_have_text(
        re.compile(r"Read /srv/example/notes\.md")
    )
    err = page.locator("#live .k-tool_result.err")
    await expect(err).to_have_text(re.compile(r"✖\s*File does not exist"))
    await expect(err.locator("details")).to_have_count(0)
    # bookkeeping lines are not rows: session_init, result, the CLI's system/* noise
    ids = await page.locator("#live [data-id]").evaluate_all("els => els.map(e => e.dataset.id)")
    shown = [ev for ev in fake.bus.history() if ev.kind in SHOWN | {"turn_start", "harness_start"}]
    assert ids == [str(ev.id) for ev in shown]
    # history rows arrive without the fade-in; live ones fade in
    await expect(page.locator("#live .fresh")).to_have_count(0)
    await fold.first.locator("summary").click()
    await expect(fold.first.locator("pre")).to_contain_text("line 40")

    await fake.end_turn()
    end = row_with(page, "k-turn_end", "turn done")
    await expect(end).to_have_class(re.compile(r"\bfresh\b"))
    await expect(banner).not_to_have_class(re.compile(r"\bactive\b"))
    await expect(page.locator("#state")).to_have_text("waiting")
    await expect(page.locator("#stats-rows tr")).to_have_count(1)
    await expect(page.locator("#stats-rows tr td.kind")).to_have_text("ok")
    await expect(page.locator("#totals")).to_contain_text("$0.0065")


async def test_reload_shows_the_same_rows_once(page: Page, url: str, fake: FakeHarness) -> None:
    fake.start_turn()
    fake.play(recorded_turn())
    await fake.end_turn()
    await open_page(page, url)
    rows = page.locator("#live [data-id]")
    await expect(rows.last).to_have_class(re.compile("k-turn_end"))
    before = await rows.evaluate_all("els => els.map(e => e.dataset.id + e.textContent)")
    await page.reload()
    await expect(page.locator("#conn")).to_have_class(re.compile(r"\bup\b"))
    await expect(rows).to_have_count(len(before))
    after = await rows.evaluate_all("els => els.map(e => e.dataset.id + e.textContent)")
    assert after == before
    assert len({r.split(" ")[0] for r in after}) == len(after)
    fake.bus.publish("note", text="after the reload")
    await expect(row_with(page, "k-note", "after the reload")).to_have_count(1)
    assert await rows.count() == len(before) + 1


async def test_a_failed_turn_shows_its_note_live(page: Page, url: str, fake: FakeHarness) -> None:
    await open_page(page, url)
    note = page.locator("#state-note")
    await expect(note).to_be_hidden()
    fake.start_turn()
    await fake.end_turn("failed", "API Error: 529 overloaded")
    await expect(note).to_be_visible()
    await expect(note).to_contain_text("last turn failed: API Error: 529 overloaded")
    fake.start_turn()
    await fake.end_turn()
    await expect(note).to_be_hidden()


async def test_each_tool_reads_as_itself(page: Page, url: str, fake: FakeHarness) -> None:
    await open_page(page, url)
    calls: list[tuple[str, dict[str, Any], str]] = [
        ("Bash", {"command": "ls -la /state"}, "Bash $ ls -la /state"),
        ("Read", {"file_path": "/state/notes.md"}, "Read /state/notes.md"),
        (
            "Edit",
            {"file_path": "/state/a.py", "old_string": "x", "new_string": "y"},
            "Edit /state/a.py",
        ),
        (
            "mcp__hyperhive__send",
            {"to": "operator", "body": "all green"},
            "send → operator: all green",
        ),
        (
            "mcp__hyperhive__ask_operator",
            {"question": "Deploy now?", "options": ["yes", "no"]},
            "ask_operator Deploy now? [yes | no]",
        ),
        ("mcp__forge__open_pr", {"title": "x"}, 'forge:open_pr {"title":"x"}'),
    ]
    for i, (name, args, _) in enumerate(calls):
        fake.bus.publish("tool_use", id=f"t{i}", name=name, input=args)
    fake.bus.publish("tool_result", tool_use_id="t0", content="x" * 121, is_error=False)
    fake.bus.publish("tool_result", tool_use_id="t1", content="y" * 120, is_error=False)
    fake.bus.publish("thinking", thinking="")
    fake.bus.publish("rate_limit", status="allowed")
    fake.bus.publish("result", subtype="success", is_error=False)
    fake.bus.publish("session_init", session_id="s", model="m", tools=[], mcp_servers=[])
    fake.bus.publish("note", text="last")
    await expect(row_with(page, "k-note", "last")).to_have_count(1)
    tools = page.locator("#live .k-tool_use")
    await expect(tools).to_have_count(len(calls))
    texts = [re.sub(r"\s+", " ", t).strip() for t in await tools.all_text_contents()]
    assert [t.removeprefix("◆").strip() for t in texts] == [want for _, _, want in calls]
    results = page.locator("#live .k-tool_result")
    await expect(results.nth(0).locator("details")).to_have_count(1)  # 121 characters
    await expect(results.nth(1).locator("details")).to_have_count(0)  # 120: inline
    await expect(page.locator("#live .k-thinking.empty")).to_have_text(re.compile("thinking…"))
    await expect(page.locator("#live [data-id]")).to_have_count(len(calls) + 2 + 1 + 1 + 1)


async def test_prompt_row_sends_and_runs_commands(
    page: Page, url: str, fake: FakeHarness, alice_hive: Hive
) -> None:
    await open_page(page, url)
    prompt = page.locator("#prompt-input")
    await enter(page, "/help")
    for cmd in ("/help", "/cancel", "/compact", "/clear"):
        await expect(row_with(page, "k-local", cmd)).to_have_count(1)
    await enter(page, "/bogus now")
    await expect(row_with(page, "k-local.err", "unknown command /bogus")).to_have_count(1)
    await enter(page, "/cancel")
    await expect(row_with(page, "k-local", "nothing to cancel (waiting)")).to_have_count(1)
    fake.set_state("thinking")
    await expect(page.locator("#state")).to_have_text("thinking")
    await enter(page, "/cancel")
    await expect(row_with(page, "k-local", "cancel sent")).to_have_count(1)
    await enter(page, "/compact")
    await expect(row_with(page, "k-local", "compaction queued")).to_have_count(1)
    assert (fake.cancels, fake.compacts) == (2, 1)
    # served by the harness itself (no core in between), a message is the agent's own. Its
    # echo row goes in *before* the request (it belongs above the turn it causes), so the row
    # alone does not mean the message is stored: only the id the answer brings does. (This
    # test once read the broker on the row alone and failed when the send was slow: held
    # here, the echo is up while the broker has nothing.)
    held: asyncio.Queue[Route] = asyncio.Queue()
    await page.route("**/send", held.put)
    await enter(page, "remember the milk")
    route = await asyncio.wait_for(held.get(), 60)
    echo = row_with(page, "k-local.sent", "remember the milk")
    await expect(echo).to_contain_text("(sending…)")
    assert "remember the milk" not in [m.body for m in await alice_hive.broker.recent("alice", 5)]
    await route.continue_()
    await expect(echo).to_have_text(re.compile(r"remember the milk\s+\(#\d+\)$"))
    rows = await alice_hive.broker.recent("alice", 5)
    assert (rows[0].sender, rows[0].body) == ("alice", "remember the milk")
    await expect(prompt).to_have_value("")
    await expect(prompt).to_be_focused()
    await prompt.press("ArrowUp")
    await expect(prompt).to_have_value("remember the milk")


async def test_sticky_bottom(page: Page, url: str, fake: FakeHarness) -> None:
    await open_page(page, url)
    live = page.locator("#live")

    async def at_bottom() -> bool:
        return bool(await live.evaluate("e => e.scrollHeight - e.scrollTop - e.clientHeight < 4"))

    for i in range(80):
        fake.bus.publish("text", text=f"line {i}")
    await expect(row_with(page, "k-text", "line 79")).to_have_count(1)
    await eventually(at_bottom)
    await live.evaluate("e => { e.scrollTop = 0; }")
    fake.bus.publish("text", text="while reading old output")
    await expect(row_with(page, "k-text", "while reading old output")).to_have_count(1)
    assert not await at_bottom()
    await expect(page.locator("#jump")).to_be_visible()
    await page.locator("#jump").click()
    await eventually(at_bottom)
    await expect(page.locator("#jump")).to_be_hidden()


async def test_inbox_only_when_there_are_rows(
    page: Page, url: str, fake: FakeHarness, alice_hive: Hive
) -> None:
    await open_page(page, url)
    await expect(page.locator("#inbox")).to_be_hidden()
    await alice_hive.broker.send("operator", "alice", "are you there?")
    fake.start_turn()  # a turn start refreshes the header, the inbox and the stats
    inbox = page.locator("#inbox")
    await expect(inbox).to_be_visible()
    await expect(inbox.locator(".inbox-row")).to_have_count(1)
    await expect(inbox.locator(".inbox-row .from")).to_have_text("operator")
    await expect(inbox.locator(".inbox-row .body")).to_have_text("are you there?")
    await page.set_viewport_size(NARROW)
    await expect(inbox).to_be_visible()


async def test_page_behind_the_core_rides_out_a_harness_restart(
    browser: Any, alice_hive: Hive, fake: FakeHarness
) -> None:
    """Through the core's proxy: the harness goes away (502s), events happen meanwhile, it comes
    back; the page reconnects by itself and shows every event exactly once."""
    from starlette.applications import Starlette

    from hyperhive.web.proxy import agent_proxy_routes
    from tests.support.webagent import serve_uds

    sock = alice_hive.paths.web_sock("alice")
    fake.bus.publish("note", text="before")
    async with serve_tcp(Starlette(routes=agent_proxy_routes(alice_hive))) as core:
        first = contextlib.AsyncExitStack()  # the first harness, stopped mid-test
        await first.enter_async_context(serve_uds(build_app(fake), sock))
        try:
            async with new_page(browser) as p:
                await open_page(p, f"{core}/agent/alice/")
                await expect(row_with(p, "k-note", "before")).to_have_count(1)
                fake.bus.end_streams()  # end the open stream, as a stopping harness does
                await first.aclose()
                await expect(p.locator("#conn")).to_have_class(re.compile(r"\bdown\b"))
                fake.bus.publish("note", text="while away")
                async with serve_uds(build_app(fake), sock):
                    await expect(p.locator("#conn")).to_have_class(re.compile(r"\bup\b"))
                    fake.bus.publish("note", text="after")
                    await expect(row_with(p, "k-note", "after")).to_have_count(1)
                    for text in ("before", "while away"):
                        await expect(row_with(p, "k-note", text)).to_have_count(1)
                    ids = await p.locator("#live [data-id]").evaluate_all(
                        "els => els.map(e => e.dataset.id)"
                    )
                    assert ids == sorted(set(ids), key=int)
        finally:
            await first.aclose()
