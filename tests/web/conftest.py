"""Fixtures for the dashboard tests: a real core whose agents run on the shipped fake runtime
(the real sandboxes are exercised in the demo test), its dashboard on a free loopback port,
an HTTP client holding a session and its CSRF token, and headless Chromium (Debian's, driven
by Playwright; never a downloaded browser)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from typing import Any

import httpx
import pytest

from hyperhive.assembly import build_hive
from hyperhive.clock import iso
from hyperhive.config import Dashboard, Defaults, HiveConfig
from hyperhive.core.hive import Hive
from hyperhive.paths import HivePaths
from hyperhive.runtime.fake import FakeRuntime, FakeWorld
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, screenshot_dir, set_expect_timeout
from tests.support.git import commit

DESKTOP = {"width": 1400, "height": 900}
NARROW = {"width": 390, "height": 844}
SCREENSHOTS = screenshot_dir()


def fake_hive(
    paths: HivePaths, config: HiveConfig, world: FakeWorld, without: Collection[str] = ()
) -> Hive:
    """The default hive with the lifecycle on the fake runtime and a crash watch that only
    ticks when poked (deterministic)."""
    return build_hive(
        paths,
        config,
        runtime_factory=lambda name: FakeRuntime(world),
        crash_interval=3600,
        without=without,
    )


def dash_config(**dashboard: Any) -> HiveConfig:
    return HiveConfig(
        defaults=Defaults(runtime="fake"),
        dashboard=Dashboard(**{"listen": "127.0.0.1:0", **dashboard}),
    )


@pytest.fixture
def world() -> FakeWorld:
    return FakeWorld()


@pytest.fixture
async def dhive(paths: HivePaths, world: FakeWorld) -> AsyncIterator[Hive]:
    """A real core with its dashboard on a free port; agents on the fake runtime."""
    async with fake_hive(paths, dash_config(), world) as hive:
        yield hive


class DashClient:
    """An httpx client with a dashboard session: `post` sends the session's CSRF token."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.http = client
        self.csrf = ""

    async def open(self) -> None:
        r = await self.http.get("/")
        r.raise_for_status()
        self.csrf = next(v for k, v in self.http.cookies.items() if k.startswith("hh_csrf_"))

    async def get(self, url: str, **kw: Any) -> httpx.Response:
        return await self.http.get(url, **kw)

    async def post(self, url: str, json: Any = None, **kw: Any) -> httpx.Response:
        headers = {"X-CSRF-Token": self.csrf, **kw.pop("headers", {})}
        return await self.http.post(url, json=json, headers=headers, **kw)


@pytest.fixture
async def client(dhive: Hive) -> AsyncIterator[DashClient]:
    async with httpx.AsyncClient(base_url=dhive.dashboard_url, timeout=30) as http:
        c = DashClient(http)
        await c.open()
        yield c


def fake_runtime(hive: Hive, name: str) -> FakeRuntime:
    rt = hive.lifecycle.runtime_for(name)
    assert isinstance(rt, FakeRuntime)
    return rt


# -- the browser -------------------------------------------------------------------------------


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    if not CHROMIUM.exists() or shutil.which("chromium") is None:
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium")
    from playwright.async_api import async_playwright

    set_expect_timeout()
    async with async_playwright() as pw:
        b = await pw.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield b
        finally:
            await b.close()


OpenPage = Callable[..., Awaitable[Any]]


@pytest.fixture
async def open_page(browser: Any) -> AsyncIterator[OpenPage]:
    """`await open_page(url, viewport=DESKTOP)`: a fresh context and page, loaded; page
    errors and console errors fail the test."""
    contexts: list[Any] = []
    errors: list[str] = []

    async def open_(url: str, viewport: dict[str, int] | None = None, **ctx: Any) -> Any:
        context = await browser.new_context(viewport=viewport or DESKTOP, **ctx)
        contexts.append(context)
        page = await context.new_page()
        page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
        # API errors are answered (and shown as toasts) on purpose; anything else failing to
        # load, and any script error, fails the test
        page.on(
            "console",
            lambda msg: (
                errors.append(f"console {msg.type}: {msg.text}")
                if msg.type == "error" and not msg.text.startswith("Failed to load resource")
                else None
            ),
        )
        page.on(
            "response",
            lambda r: (
                errors.append(f"HTTP {r.status} for {r.url}")
                if r.status >= 400 and "/api/" not in r.url
                else None
            ),
        )
        await page.goto(url)
        await page.wait_for_selector("#conn.live")  # history loaded, stream open
        return page

    yield open_
    for context in contexts:
        with contextlib.suppress(Exception):
            await context.close()
    assert not errors, errors


@pytest.fixture
async def page(dhive: Hive, open_page: OpenPage) -> Any:
    return await open_page(dhive.dashboard_url)


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


def agent_row(page: Any, name: str) -> Any:
    """An agent's line in the dashboard's agent table."""
    return page.locator(f'#container-list > li[data-name="{name}"]')


async def expanded(page: Any, name: str) -> Any:
    """The agent's row with its details (meta, actions, logs) open."""
    from playwright.async_api import expect

    r = agent_row(page, name)
    await expect(r).to_be_visible()
    button = r.locator(".expand")
    if await button.get_attribute("aria-expanded") != "true":
        await button.click()
    await expect(r.locator(".details")).to_be_visible()
    return r
