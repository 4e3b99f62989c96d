"""What the browser tests (tests/web, tests/webagent) share: Debian's Chromium, its flags, and
where full-page screenshots go.

Screenshots: by default a temp dir (a test run leaves the work tree as it was); with
`HIVE_UPDATE_SCREENSHOTS=1` the repo's `docs/screenshots/`, to refresh the pictures the docs
show. Either way every screenshot is taken, so rendering is exercised on every run."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"

# How long an `expect(...)` waits for the page to get there: a hang guard, not a speed
# assertion, so generous enough for a real claude turn on a machine busy on every core. Set
# once, by the browser fixtures (`expect.set_options` is process-wide: two modules setting
# their own values made the last one imported win for every test).
EXPECT_TIMEOUT_MS = 60_000


def set_expect_timeout() -> None:
    from playwright.async_api import expect

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)


def screenshot_dir() -> Path:
    if os.environ.get("HIVE_UPDATE_SCREENSHOTS"):
        return DOCS
    path = Path(tempfile.gettempdir()) / "hyperhive-screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path
