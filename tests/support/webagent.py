"""Helpers for the agent page's tests (`tests/webagent/`): a harness stand-in over a real
EventBus and TurnStats, apps served on real TCP ports and unix sockets, an SSE reader, pages in
headless Chromium (Debian's, driven by Playwright) and what tests do on them.

The fast tests feed the bus with a recorded Claude Code turn (`tests/webagent/data/turn.jsonl`,
the CLI's own stream-json, parsed exactly as the harness parses it). Fixtures are in
`tests/webagent/conftest.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import anyio
import httpx
import uvicorn
from playwright.async_api import Page, expect

from hyperhive.assembly import build_hive
from hyperhive.config import HiveConfig
from hyperhive.core.hive import Hive
from hyperhive.harness.events import EventBus
from hyperhive.harness.options import HarnessOptions
from hyperhive.harness.reporter import StateReporter, StateTracker
from hyperhive.harness.stats import TurnStatRow, TurnStats
from hyperhive.harness.stream import parse_line
from hyperhive.harness.streamevents import event_kind, event_payload
from hyperhive.httpserver import QuietServer, serve_unix
from hyperhive.netio import bind_with_retry
from hyperhive.paths import HivePaths
from hyperhive.web.agentports import AgentPorts
from hyperhive.web.ports import PORT_BASE, PORT_SPAN
from tests.support.browser import screenshot_dir
from tests.support.waiting import eventually

# Starlette's FileResponse lazily imports anyio's file module on first use; under pytest (anyio
# is a pytest plugin, so its modules get assertion-rewritten) that import can hit CPython 3.11's
# "AST constructor recursion depth mismatch" when another thread compiles at the same moment.
# Import it now, once, before any server thread exists.
anyio.open_file  # noqa: B018

DATA = Path(__file__).resolve().parent.parent / "webagent" / "data"
SCREENSHOTS = screenshot_dir()
DESKTOP = {"width": 1280, "height": 900}
NARROW = {"width": 390, "height": 844}


def recorded_turn() -> list[tuple[str, dict[str, Any]]]:
    """(kind, payload) bus events of a recorded turn: thinking, text, Bash with 40+ lines of
    output, a Read that failed, a Write, the final text, the result."""
    out: list[tuple[str, dict[str, Any]]] = []
    for line in (DATA / "turn.jsonl").read_text().splitlines():
        for ev in parse_line(line):
            out.append((event_kind(ev), json.loads(json.dumps(event_payload(ev), default=str))))
    return out


class FakeHarness:
    """What the web API reads of a `Harness`, with a real event bus and stats store; tests
    drive its state and events by hand."""

    def __init__(self, state_dir: Path, socket: Path, name: str = "alice") -> None:
        self.opts = HarnessOptions(socket=socket, state_dir=state_dir, base_url="http://sim")
        self.name = name
        self.kind = "agent"
        self.model = "haiku"
        self.state = "waiting"
        self.unread = 0
        self.config_dir = state_dir / ".claude"
        self.bus = EventBus(state_dir)
        self.stats = TurnStats(state_dir)
        self.tracker = StateTracker(StateReporter(str(socket)))  # never started: records only
        self.bus.add_listener(lambda ev: self.tracker.on_event(ev.kind, ev.ts, ev.payload))
        self.cancels = 0
        self.compacts = 0

    async def __aenter__(self) -> FakeHarness:
        await self.bus.open()
        await self.stats.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stats.__aexit__()
        await self.bus.aclose()

    def set_state(self, state: str) -> None:
        self.state = state
        self.bus.publish("state", state=state)

    async def cancel(self) -> bool:
        self.cancels += 1
        running = self.state == "thinking"
        if running:
            self.bus.publish("note", text="cancel requested by the operator")
        return running

    def request_compact(self) -> None:
        self.compacts += 1

    def start_turn(self, sender: str = "operator", body: str = "please look around") -> None:
        self.set_state("thinking")
        self.bus.publish(
            "turn_start", **{"from": sender, "body": body, "unread": 2, "kind": "message", "id": 7}
        )

    def play(self, events: list[tuple[str, dict[str, Any]]]) -> None:
        for kind, payload in events:
            self.bus.publish(kind, **payload)

    async def end_turn(self, kind: str = "ok", note: str = "") -> None:
        self.bus.publish("turn_end", ok=kind == "ok", kind=kind, note=note)
        self.set_state("idle")
        await self.stats.record(
            TurnStatRow(
                model="haiku",
                wake_from="operator",
                result_kind=kind,
                started_at="2026-01-01T10:00:00Z",
                ended_at="2026-01-01T10:00:02Z",
                duration_ms=2345,
                input_tokens=64008,
                output_tokens=180,
                cache_read_tokens=1800,
                cost_usd=0.0065,
                tool_call_count=3,
                tool_breakdown={"Bash": 1, "Read": 1, "Write": 1},
            )
        )
        self.set_state("waiting")


@contextlib.asynccontextmanager
async def serve_tcp(app: Any) -> AsyncIterator[str]:
    """Serve an ASGI app on 127.0.0.1 (a free port); yields its base URL."""
    sock = await bind_with_retry("127.0.0.1", 0)
    port = sock.getsockname()[1]
    server = QuietServer(
        uvicorn.Config(
            app, log_level="warning", lifespan="off", access_log=False, timeout_graceful_shutdown=2
        )
    )
    task = asyncio.create_task(server.serve(sockets=[sock]), name="test-web")
    await asyncio.wait_for(server.ready.wait(), 10)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.request_exit()
        await asyncio.wait_for(task, 10)
        sock.close()
        await _close_core(app)


@contextlib.asynccontextmanager
async def serve_uds(app: Any, path: Path) -> AsyncIterator[Path]:
    """Serve an ASGI app on a unix socket (as the harness does) for the duration."""
    task = asyncio.create_task(serve_unix(app, path), name="test-web-uds")
    try:
        await eventually(path.exists, what=f"{path} to listen")
        yield path
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await _close_core(app)


async def _close_core(app: Any) -> None:
    """Close the harness app's connection to the core (`build_app` leaves it to the server)."""
    state = getattr(app, "state", None)
    core = getattr(state, "core", None) if state is not None else None
    if core is not None:
        await core.aclose()


class SSE:
    """Reads server-sent events off a streaming httpx response, one message at a time."""

    def __init__(self, resp: httpx.Response) -> None:
        self._lines = resp.aiter_lines()

    async def next(self, timeout: float = 10.0) -> dict[str, Any]:
        """The next message with data: `{"event"?, "id"?, "data": <decoded JSON>}`."""
        cur: dict[str, Any] = {}
        async with asyncio.timeout(timeout):
            async for line in self._lines:
                if line.startswith(":"):
                    continue
                if not line:
                    if "data" in cur:
                        return cur
                    cur = {}
                    continue
                key, _, value = line.partition(":")
                value = value.removeprefix(" ")
                cur[key] = json.loads(value) if key == "data" else value
        raise AssertionError("the event stream ended")


def uds_client(path: Path) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.AsyncHTTPTransport(uds=str(path)), base_url="http://agent", timeout=10
    )


QUIET = frozenset({"dashboard", "agent_ports"})


def agent_ports(hive: Hive) -> AgentPorts:
    return cast("AgentPorts", hive.feature("agent_ports"))


def quiet_hive(paths: HivePaths, config: HiveConfig, *keep: str) -> Hive:
    """The default hive without the features that listen on fixed TCP ports (the dashboard's
    7000, the agents' 8100-8999: other test runs on this machine may hold them)."""
    return build_hive(paths, config, without=QUIET - set(keep))


def free_agent_port() -> int:
    """A port in the agents' range that nothing listens on right now."""
    for port in random.sample(range(PORT_BASE, PORT_BASE + PORT_SPAN), PORT_SPAN):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 8100-8999")


@contextlib.asynccontextmanager
async def new_page(browser: Any, viewport: dict[str, int] = DESKTOP) -> AsyncIterator[Any]:
    """A page in a fresh context; fails the test on any uncaught JavaScript error. Open it
    *after* the server it talks to, so it closes (ending its event stream) first."""
    ctx = await browser.new_context(viewport=viewport)
    p = await ctx.new_page()
    errors: list[str] = []
    p.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield p
    finally:
        await ctx.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


async def open_page(page: Page, url: str) -> None:
    """Go to the agent page at `url` and wait until its event stream is up."""
    await page.goto(url)
    await expect(page.locator("#conn")).to_have_class(re.compile(r"\bup\b"))


async def enter(page: Page, text: str) -> None:
    """Type `text` into the page's prompt row and press Enter."""
    await page.locator("#prompt-input").fill(text)
    await page.locator("#prompt-input").press("Enter")
