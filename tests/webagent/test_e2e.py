"""The agent page end to end: a real core (with its dashboard and the agents' ports), a real
harness in a real sandbox running the real `claude` CLI against the scripted model, and
headless Chromium on `/agent/<name>/` (through the core's proxy) and on the agent's own port."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect

from hyperhive.assembly import build_hive
from hyperhive.config import Dashboard, Defaults, HiveConfig, ModelEndpoint
from hyperhive.core.hive import Hive
from hyperhive.harness.stats import read_stats
from hyperhive.paths import HivePaths
from hyperhive.runtime.choose import sandbox_support
from hyperhive.sim import Scenario, SimServer
from tests.support.browser import full_page_screenshot
from tests.support.waiting import eventually
from tests.support.webagent import (
    NARROW,
    SCREENSHOTS,
    agent_ports,
    enter,
    free_agent_port,
    new_page,
    open_page,
)

pytestmark = [pytest.mark.slow, pytest.mark.browser]

SLOW_TEXT = " ".join(f"word{i}" for i in range(150))  # 50 deltas x 400 ms: a 20 s answer
STREAM_TEXT = " ".join(f"piece{i}" for i in range(30))  # 10 deltas x 400 ms: a 4 s answer

SCENARIO: dict[str, Any] = {
    "default": {"text": "Ready.", "usage": {"input_tokens": 1200, "output_tokens": 12}},
    "rules": [
        {
            "id": "look",
            "agent": "alice",
            "when_user_contains": "LOOK-AROUND",
            "usage": {"input_tokens": 2400, "output_tokens": 60, "cache_read_input_tokens": 1800},
            "reply": [
                {"type": "thinking", "thinking": "The operator wants a look around."},
                {"type": "text", "text": "Let me look around first."},
                {
                    "type": "tool_use",
                    "name": "Bash",
                    "input": {"command": "seq 1 60 | sed 's/^/row /'", "description": "rows"},
                },
            ],
        },
        {
            "id": "looked",
            "agent": "alice",
            "when_tool_result_for": "Bash",
            "text": "Looked around: sixty rows, all accounted for.",
        },
        {
            "id": "ping",
            "agent": "alice",
            "when_user_contains": "PING-1",
            "text": "pong from {agent}",
        },
        {
            "id": "stream",
            "agent": "alice",
            "when_user_contains": "STREAM-IT",
            "chunk_delay_ms": 400,
            "reply": [
                {"type": "thinking", "thinking": "Streaming " + STREAM_TEXT},
                {"type": "text", "text": STREAM_TEXT},
            ],
        },
        {
            "id": "slow",
            "agent": "alice",
            "when_user_contains": "SLOW-WALK",
            "chunk_delay_ms": 400,
            "text": SLOW_TEXT,
        },
    ],
}


def runtime() -> str:
    return "bwrap" if sandbox_support() is None else "process"


def config(sim: SimServer) -> HiveConfig:
    return HiveConfig(
        defaults=Defaults(runtime=runtime(), network="none"),
        model_endpoint=ModelEndpoint(base_url=f"{sim.base_url}/a/{{agent}}"),
        dashboard=Dashboard(listen="127.0.0.1:0"),
    )


@contextlib.asynccontextmanager
async def agents_stopped(paths: HivePaths, cfg: HiveConfig) -> AsyncIterator[None]:
    """Sandboxes outlive the daemon by design: whatever happens, stop them at the end."""
    try:
        yield
    finally:
        async with build_hive(paths, cfg) as hive:
            for name in hive.registry.names():
                with contextlib.suppress(Exception):
                    await hive.lifecycle.kill_agent(name)


async def alice_ready(hive: Hive) -> None:
    """alice's harness is connected and has finished its start-up (kick) turn."""
    await eventually(lambda: hive.connections("alice") > 0, 60, "alice's harness to connect")
    await eventually(
        lambda: len(read_stats(hive.paths.state_dir("alice"))[0]) >= 1, 60, "the kick turn"
    )


def rows(page: Page, cls: str, text: str | re.Pattern[str]) -> Any:
    return page.locator(f"#live .{cls}", has_text=text)


async def row_ids(page: Page) -> list[str]:
    return await page.locator("#live [data-id]").evaluate_all(
        "els => els.map(e => e.dataset.id + ' ' + e.textContent)"
    )


async def test_the_page_end_to_end(browser: Any, short_tmp: Path) -> None:
    paths = HivePaths(short_tmp / "h")
    port = free_agent_port()
    paths.port_file("alice").parent.mkdir(parents=True, exist_ok=True)
    paths.port_file("alice").write_text(f"{port}\n")
    async with SimServer(Scenario.model_validate(SCENARIO)) as sim:
        cfg = config(sim)
        async with agents_stopped(paths, cfg), build_hive(paths, cfg) as hive:
            await hive.spawn("alice")
            await alice_ready(hive)
            await eventually(lambda: agent_ports(hive).port("alice") == port, 30, "alice's port")
            proxied = f"{hive.dashboard_url}agent/alice/"
            direct = f"http://127.0.0.1:{port}/"

            async with new_page(browser) as a:
                await open_page(a, proxied)
                await expect(a.locator("#state")).to_have_text("waiting")
                await expect(a.locator("#banner")).not_to_have_class(re.compile(r"\bactive\b"))

                # a turn with a Bash call and a long result, live through the core's proxy
                await enter(a, "LOOK-AROUND please")
                await expect(rows(a, "k-local.sent", "operator → alice")).to_have_count(1)
                start = rows(a, "k-turn_start", "operator")
                await expect(start).to_contain_text("woke me")
                await expect(rows(a, "k-turn_body", "LOOK-AROUND please")).to_have_count(1)
                await expect(rows(a, "k-thinking", "wants a look around")).to_have_count(1)
                bash = rows(a, "k-tool_use", "Bash")
                await expect(bash).to_contain_text("Bash $ seq 1 60 | sed 's/^/row /'")
                fold = a.locator("#live .k-tool_result details.fold")
                await expect(fold.locator("summary")).to_contain_text("row 1 · 60 lines")
                await expect(fold).not_to_have_attribute("open", "")
                await expect(rows(a, "k-text", "sixty rows, all accounted")).to_have_count(1)
                # the start-up (kick) turn and this one
                await expect(rows(a, "k-turn_end", "turn done")).to_have_count(2)
                await expect(a.locator("#stats-rows tr").first.locator("td.tools")).to_have_text(
                    "Bash×1"
                )

                # send from the prompt row wakes the agent; its reply appears live
                await enter(a, "PING-1")
                pong = rows(a, "k-text", "pong from alice")
                await expect(pong).to_have_class(re.compile(r"\bfresh\b"))

                # live text: the reply shows while it streams, then folds into its final row
                await enter(a, "STREAM-IT")
                streaming = a.locator("#live .k-partial.text")
                await expect(streaming).to_contain_text("piece0 piece1")
                assert "piece29" not in (await streaming.text_content() or "")
                final = rows(a, "k-text", "piece29")
                await expect(final).to_have_count(1)
                await expect(final).to_contain_text(STREAM_TEXT)
                await expect(a.locator("#live .k-partial")).to_have_count(0)
                await expect(rows(a, "k-thinking", "Streaming piece0")).to_have_count(1)

                # a slow turn: a second page opened mid-turn (on the agent's own port) shows
                # the history and the active banner, and /cancel there interrupts the turn
                seen = sim.seen
                await enter(a, "SLOW-WALK")
                await sim.wait_for_request(lambda r: r.rule_id == "slow", 30, after=seen)
                await expect(a.locator("#banner")).to_have_class(re.compile(r"\bactive\b"))
                async with new_page(browser) as b:
                    await open_page(b, direct)
                    await expect(b.locator("#banner")).to_have_class(re.compile(r"\bactive\b"))
                    await expect(b.locator("#state")).to_have_text("thinking")
                    await expect(rows(b, "k-text", "pong from alice")).to_have_class(
                        re.compile(r"\bno-anim\b")
                    )
                    await expect(rows(b, "k-turn_body", "SLOW-WALK")).to_have_count(1)
                    if SCREENSHOTS.is_dir():
                        await b.screenshot(path=str(SCREENSHOTS / "agent-midturn.png"))
                    await enter(b, "/cancel")
                    await expect(rows(b, "k-local", "cancel sent")).to_have_count(1)
                    for p in (a, b):
                        await expect(rows(p, "k-turn_end", "turn cancelled")).to_have_count(1)
                        await expect(p.locator("#banner")).not_to_have_class(
                            re.compile(r"\bactive\b")
                        )
                    await expect(b.locator("#stats-rows tr td.kind").first).to_have_text(
                        "cancelled"
                    )
                last = read_stats(hive.paths.state_dir("alice"), 1)[0][0]
                assert last["result_kind"] == "cancelled" and last["wake_from"] == "operator"
                assert sim.requests[-1].outcome == "disconnected"

                # reloading shows the same rows, once each
                before = await row_ids(a)
                await a.reload()
                await expect(a.locator("#conn")).to_have_class(re.compile(r"\bup\b"))
                await expect(a.locator("#live [data-id]")).to_have_count(len(before))
                assert await row_ids(a) == before
                if SCREENSHOTS.is_dir():
                    await full_page_screenshot(a, SCREENSHOTS / "agent-desktop.png")
            async with new_page(browser, NARROW) as n:
                await open_page(n, proxied)
                await expect(rows(n, "k-turn_end", "turn cancelled")).to_have_count(1)
                if SCREENSHOTS.is_dir():
                    await full_page_screenshot(n, SCREENSHOTS / "agent-narrow.png")


async def test_the_agent_port_is_sticky_across_a_daemon_restart(
    browser: Any, short_tmp: Path
) -> None:
    paths = HivePaths(short_tmp / "h")
    paths.port_file("alice").parent.mkdir(parents=True, exist_ok=True)
    paths.port_file("alice").write_text(f"{free_agent_port()}\n")  # its hash port may be busy
    async with SimServer(Scenario.model_validate(SCENARIO)) as sim:
        cfg = config(sim)
        async with agents_stopped(paths, cfg):
            async with build_hive(paths, cfg) as hive:
                await hive.spawn("alice")
                await alice_ready(hive)
                await eventually(lambda: "alice" in agent_ports(hive).servers, 60, "the port")
                port = agent_ports(hive).port("alice")
                async with new_page(browser) as p:
                    await open_page(p, f"http://127.0.0.1:{port}/")
                    await enter(p, "PING-1")
                    await expect(rows(p, "k-text", "pong from alice")).to_have_count(1)
                    # the turn's last row too (kick + this turn), or the snapshot may miss it
                    await expect(rows(p, "k-turn_end", "turn done")).to_have_count(2)
                    before = await row_ids(p)
            # the daemon is gone; alice's sandbox and harness live on. A new daemon:
            async with build_hive(paths, cfg) as hive:
                await eventually(lambda: "alice" in agent_ports(hive).servers, 60, "the port")
                assert agent_ports(hive).port("alice") == port
                async with new_page(browser) as p:
                    await open_page(p, f"http://127.0.0.1:{port}/")
                    await expect(p.locator("#live [data-id]")).to_have_count(len(before))
                    assert await row_ids(p) == before
                    # the page's own core connection is back (it just loaded the state); wait
                    # for the harness loop's too (its client retries with a backoff), then wake
                    # the agent through the new daemon and watch the turn start live
                    await eventually(lambda: hive.connections("alice") >= 2, 90, "reconnect")
                    await enter(p, "after the restart")
                    woke = rows(p, "k-turn_body", "after the restart")
                    await expect(woke).to_have_count(1)
                    await expect(p.locator("#live .turn-block").last).to_have_class(
                        re.compile(r"\bfresh\b")
                    )
