"""Fixtures for the agent page: the real core with an agent `alice`, a harness stand-in
(`FakeHarness`) for it, the harness's app on a TCP port (`url`), and headless Chromium
(`browser`, `page`). The helpers they use, and tests import, are in `tests/support/webagent.py`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page

from hyperhive.config import HiveConfig
from hyperhive.core.hive import Hive
from hyperhive.harness.web import build_app, installed_page
from hyperhive.paths import HivePaths
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, set_expect_timeout
from tests.support.webagent import FakeHarness, new_page, quiet_hive, serve_tcp


@pytest.fixture
async def alice_hive(paths: HivePaths, hive_config: HiveConfig) -> AsyncIterator[Hive]:
    """The real core with an agent `alice` (external runtime: nothing launched)."""
    async with quiet_hive(paths, hive_config) as hive:
        await hive.spawn("alice")
        yield hive


@pytest.fixture
async def fake(alice_hive: Hive, short_tmp: Path) -> AsyncIterator[FakeHarness]:
    state = short_tmp / "alice-state"
    state.mkdir()
    async with FakeHarness(state, alice_hive.paths.agent_sock("alice")) as h:
        h.bus.publish("harness_start", name="alice", kind="agent", model="haiku")
        yield h


@pytest.fixture
def chromium() -> Path:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium")
    return CHROMIUM


@pytest.fixture
async def browser(chromium: Path) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    set_expect_timeout()
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            await b.close()


@pytest.fixture
async def url(fake: FakeHarness) -> AsyncIterator[str]:
    """The harness's app (API + page) on a TCP port, as a browser sees the agent's port."""
    async with serve_tcp(build_app(fake, installed_page())) as base:
        yield base + "/"


@pytest.fixture
async def page(browser: Any, url: str) -> AsyncIterator[Page]:
    """A desktop-sized page, opened after the app at `url` (so it closes first)."""
    async with new_page(browser) as p:
        yield p
