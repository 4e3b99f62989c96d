"""Fixtures for the dashboard tests: a real core whose agents run on the shipped fake runtime
(the real sandboxes are exercised in the demo test), its dashboard on a free loopback port,
an HTTP client holding a session and its CSRF token, and headless Chromium (Debian's, driven
by Playwright; never a downloaded browser)."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from hyperhive.config import Dashboard, Defaults, HiveConfig
from hyperhive.core.crashwatch import CrashWatch
from hyperhive.core.features import default_features
from hyperhive.core.hive import Hive
from hyperhive.core.lifecycle import Lifecycle
from hyperhive.paths import HivePaths
from hyperhive.runtime.fake import FakeRuntime, FakeWorld
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, screenshot_dir, set_expect_timeout

DESKTOP = {"width": 1400, "height": 900}
NARROW = {"width": 390, "height": 844}
SCREENSHOTS = screenshot_dir()


def fake_features(world: FakeWorld) -> list[Any]:
    """The default features with the lifecycle on the fake runtime and a crash watch that
    only ticks when poked (deterministic)."""
    out: list[Any] = []
    for f in default_features():
        if isinstance(f, Lifecycle):
            f = Lifecycle(runtime_factory=lambda name: FakeRuntime(world))
        elif isinstance(f, CrashWatch):
            f = CrashWatch(interval=3600)
        out.append(f)
    return out


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
    async with Hive(paths, dash_config(), features=fake_features(world)) as hive:
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
