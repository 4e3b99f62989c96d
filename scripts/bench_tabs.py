"""Ten dashboard tabs in one browser: how long until every tab shows a new event, and how long
each tab's action takes to answer, while all ten are open (issue #18: "each action answering
in under a second"). A real core with agents on the fake runtime, Debian's Chromium.

    .venv/bin/python scripts/bench_tabs.py [--tabs 10] [--rounds 5]

Prints medians and maxima in milliseconds. Not a test: figures go to docs/benchmarks.md."""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from playwright.async_api import async_playwright, expect

from hyperhive.paths import HivePaths
from hyperhive.runtime.fake import FakeWorld
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS
from tests.web.conftest import dash_config, fake_hive


async def run(tabs_n: int, rounds: int) -> None:
    home = Path(tempfile.mkdtemp(dir="/tmp", prefix="hhb"))
    try:
        async with fake_hive(HivePaths(home / "h"), dash_config(), FakeWorld()) as hive:
            await hive.spawn("alice")
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(
                    executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
                )
                ctx = await browser.new_context()
                tabs = []
                t0 = time.perf_counter()
                for _ in range(tabs_n):
                    tab = await ctx.new_page()
                    await tab.goto(hive.dashboard_url)
                    await expect(tab.locator("#conn")).to_have_class("conn live", timeout=30_000)
                    tabs.append(tab)
                load_ms = (time.perf_counter() - t0) * 1000
                fanout: list[float] = []
                actions: list[float] = []
                for r in range(rounds):
                    start = time.perf_counter()
                    await hive.broker.send("manager", "operator", f"bench event {r}")
                    for tab in tabs:
                        await expect(
                            tab.locator("#flow-list > li", has_text=f"bench event {r}")
                        ).to_have_count(1)
                    fanout.append((time.perf_counter() - start) * 1000)

                    async def act(tab: object, i: int, r: int = r) -> float:
                        await tab.locator("#reply-body").fill(f"bench reply {r}.{i}")  # type: ignore[attr-defined]
                        s = time.perf_counter()
                        await tab.locator("#reply-form").get_by_role("button", name="send").click()  # type: ignore[attr-defined]
                        await expect(tab.locator("#reply-body")).to_have_value("", timeout=30_000)  # type: ignore[attr-defined]
                        return (time.perf_counter() - s) * 1000

                    actions += await asyncio.gather(*(act(t, i) for i, t in enumerate(tabs)))
                await browser.close()
    finally:
        shutil.rmtree(home, ignore_errors=True)
    print(f"{tabs_n} tabs opened one after another: {load_ms:.0f} ms in all")
    print(
        f"event reaches all {tabs_n} tabs: median {statistics.median(fanout):.0f} ms, "
        f"max {max(fanout):.0f} ms ({rounds} events)"
    )
    print(
        f"action answered (all tabs at once): median {statistics.median(actions):.0f} ms, "
        f"max {max(actions):.0f} ms ({len(actions)} actions)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tabs", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    asyncio.run(run(args.tabs, args.rounds))


if __name__ == "__main__":
    main()
