"""The dashboard with a hive of a hundred agents (issue #18), in Debian's headless Chromium:

- navigation → agent table rendered (the page's `hh-table` performance mark, inline right
  after the server-rendered rows), → its frame laid out and recorded (`hh-table-frame`, set
  by this script's init hook), → first contentful paint, → `hh-ready` (the script adopted
  the rows: the page is live), p50 of `--loads` fresh loads;
- with `--pages` dashboard pages open (each in its own browser context, so each holds its own
  event stream), the delay from `broker.send` to the row in every page's message flow, p50/p99;
- the core's RSS (this process: the core runs in-process; Chromium and Playwright's driver are
  other processes), after filling the hive and at the end;
- ten tabs of one browser (one shared stream): every tab's reply action answering, p50/max.

A real core (sqlite) with agents on the fake runtime, `--agents` agents and `--messages`
messages in the broker (all but the newest 500 marked read; `--unread`: none). Prints the figures; not a test (they go to docs/benchmarks.md).

    .venv/bin/python scripts/bench_dashboard.py [--agents 100] [--messages 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from playwright.async_api import async_playwright, expect

from hyperhive.budgetconfig import Budgets
from hyperhive.core.hive import Hive
from hyperhive.paths import HivePaths
from hyperhive.runtime.fake import FakeWorld
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS
from tests.web.conftest import dash_config, fake_hive

OBSERVE = """() => {
  window.__arr = {};
  new MutationObserver((ms) => {
    for (const m of ms) for (const n of m.addedNodes) {
      const k = /bench-ev-(\\d+)/.exec(n.textContent || "");
      if (k && !(k[1] in window.__arr)) window.__arr[k[1]] = Date.now();
    }
  }).observe(document.querySelector("#flow-list"), { childList: true });
}"""


UNREAD = 500


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


async def fill(hive: Hive, agents: int, messages: int, unread: int = UNREAD) -> None:
    t0 = time.perf_counter()
    for i in range(agents - 1):  # the manager is the hundredth
        await hive.spawn(f"agent-{i:03d}")
    names = [n for n in hive.registry.names()]
    print(f"{len(names)} agents spawned in {time.perf_counter() - t0:.1f} s", flush=True)
    t0 = time.perf_counter()
    sent = 0
    batch = 200
    while sent < messages:
        n = min(batch, messages - sent)
        await asyncio.gather(
            *(
                hive.broker.send(
                    names[(sent + j) % len(names)],
                    names[(sent + j + 1) % len(names)],
                    f"filler message {sent + j}: " + "x" * 80,
                )
                for j in range(n)
            )
        )
        sent += n
    # a hive's history, not a backlog: agents have read all but the newest `unread` messages
    # (`--unread`: all of them stay unread, a backlog)
    unread = min(unread, messages)
    db: Any = getattr(hive.broker.store, "db", None)
    if db is not None and unread < messages:
        await db.write(
            lambda conn: conn.execute(
                "UPDATE messages SET delivered_at = sent_at"
                " WHERE id <= (SELECT max(id) FROM messages) - ?",
                (unread,),
            )
        )
    print(
        f"{messages} messages sent in {time.perf_counter() - t0:.1f} s "
        f"(all but the newest {unread} marked read)",
        flush=True,
    )


# Injected before the page's own scripts: when the page marks `hh-table`, wait for the next
# frame's callback and then a task, which runs once that frame's style, layout and paint
# recording are done on the page's main thread: `hh-table-frame`, the table rendered but not
# yet rasterised and composited (which the first contentful paint adds).
FRAME_HOOK = """(() => {
  const mark = performance.mark.bind(performance);
  performance.mark = (name, ...rest) => {
    const m = mark(name, ...rest);
    if (name === "hh-table") {
      requestAnimationFrame(() => {
        const ch = new MessageChannel();
        ch.port1.onmessage = () => mark("hh-table-frame");
        ch.port2.postMessage(0);
      });
    }
    return m;
  };
})();"""

LOAD_MARKS = """() => ({
  table: performance.getEntriesByName('hh-table')[0].startTime,
  frame: performance.getEntriesByName('hh-table-frame')[0].startTime,
  paint: (performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime,
  ready: performance.getEntriesByName('hh-ready')[0].startTime,
  ttfb: performance.getEntriesByType('navigation')[0].responseStart,
})"""


async def loads(browser: Any, url: str, n: int, agents: int) -> dict[str, list[float]]:
    """Per load, ms after navigation: the `hh-table` mark (the rows are in the page, styled),
    `hh-table-frame` (the frame holding them laid out and recorded), the first contentful
    paint, `hh-ready` (the script adopted them: live) and the first byte."""
    out: dict[str, list[float]] = {"table": [], "frame": [], "paint": [], "ready": [], "ttfb": []}
    for _ in range(n):
        ctx = await browser.new_context(viewport={"width": 1400, "height": 900})
        page = await ctx.new_page()
        await page.add_init_script(FRAME_HOOK)
        await page.goto(url, timeout=120_000)
        await expect(page.locator("#container-list > li")).to_have_count(agents, timeout=60_000)
        await page.wait_for_function(
            "performance.getEntriesByName('hh-ready').length"
            " && performance.getEntriesByName('hh-table-frame').length"
            " && performance.getEntriesByName('first-contentful-paint').length",
            timeout=60_000,
        )
        marks = await page.evaluate(LOAD_MARKS)
        for k in out:
            out[k].append(float(marks[k]))
        await ctx.close()
    return out


async def event_delay(hive: Hive, browser: Any, url: str, pages_n: int, events: int) -> list[float]:
    ctxs = []
    pages = []
    for _ in range(pages_n):
        ctx = await browser.new_context(viewport={"width": 1400, "height": 900})
        page = await ctx.new_page()
        await page.goto(url, timeout=120_000)
        await expect(page.locator("#conn")).to_have_class("conn live", timeout=60_000)
        await page.evaluate(OBSERVE)
        ctxs.append(ctx)
        pages.append(page)
    sent_at: dict[int, float] = {}
    for i in range(events):
        sent_at[i] = time.time() * 1000
        await hive.broker.send("manager", "operator", f"bench-ev-{i}")
        await asyncio.sleep(0.25)
    delays: list[float] = []
    for page in pages:
        await page.wait_for_function(
            f"Object.keys(window.__arr).length >= {events}", timeout=60_000
        )
        arr = await page.evaluate("window.__arr")
        delays += [float(arr[str(i)]) - sent_at[i] for i in range(events)]
    for ctx in ctxs:
        await ctx.close()
    return delays


# In the page: the time from the reply form's submit to the page clearing it (the moment the
# operator sees the answer), without the automation's own time (Playwright's click waits for
# the element to be visible, stable and enabled in each of the ten busy tabs, one at a time).
# force: the ten clicks go out together; without it Playwright checks each button is visible,
# stable (two equal animation frames) and enabled in each busy tab in turn, which spreads the
# clicks over seconds and times the automation rather than the page
FORCE = True
PAGE_TIMER = """() => {
  const el = document.querySelector('#reply-body');
  const d = Object.getOwnPropertyDescriptor(HTMLTextAreaElement.prototype, 'value');
  window.__acts = []; window.__t0 = 0;
  Object.defineProperty(el, 'value', {configurable: true,
    get() { return d.get.call(this); },
    set(v) { d.set.call(this, v);
      if (v === '' && window.__t0) { window.__acts.push(performance.now() - window.__t0); window.__t0 = 0; } }});
  document.querySelector('#reply-form').addEventListener(
    'submit', () => { window.__t0 = performance.now(); }, true);
}"""


async def tab_actions(
    browser: Any, url: str, tabs_n: int, rounds: int
) -> tuple[list[float], list[float]]:
    """(click → form cleared as Playwright sees it, submit → form cleared in the page)."""
    ctx = await browser.new_context(viewport={"width": 1400, "height": 900})
    tabs = []
    for _ in range(tabs_n):
        tab = await ctx.new_page()
        await tab.goto(url, timeout=120_000)
        await expect(tab.locator("#conn")).to_have_class("conn live", timeout=60_000)
        await tab.evaluate(PAGE_TIMER)
        tabs.append(tab)
    out: list[float] = []
    for r in range(rounds):

        async def act(tab: Any, i: int, r: int = r) -> float:
            await tab.locator("#reply-body").fill(f"bench reply {r}.{i}")
            s = time.perf_counter()
            await tab.locator("#reply-form").get_by_role("button", name="send").click(force=FORCE)
            await expect(tab.locator("#reply-body")).to_have_value("", timeout=60_000)
            return (time.perf_counter() - s) * 1000

        out += await asyncio.gather(*(act(t, i) for i, t in enumerate(tabs)))
    in_page: list[float] = []
    for tab in tabs:
        in_page += [float(x) for x in await tab.evaluate("window.__acts")]
    await ctx.close()
    return out, in_page


async def run(args: argparse.Namespace) -> None:
    home = Path(tempfile.mkdtemp(dir="/tmp", prefix="hhbd"))
    try:
        # the fill floods on purpose: the runaway guard would trip every agent's breaker
        config = dash_config().model_copy(
            update={
                "budgets": Budgets(runaway_messages_per_minute=0, runaway_exchanges_per_minute=0)
            }
        )
        async with fake_hive(HivePaths(home / "h"), config, FakeWorld()) as hive:
            await fill(hive, args.agents, args.messages, args.messages if args.unread else UNREAD)
            base_rss = rss_mb()
            url = hive.dashboard_url
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(
                    executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
                )
                got = await loads(browser, url, args.loads, args.agents)
                for key, what in (
                    ("table", "agent table (hh-table)"),
                    ("frame", "agent table's frame rendered (hh-table-frame)"),
                    ("paint", "first contentful paint"),
                    ("ready", "page live (hh-ready)"),
                    ("ttfb", "first byte"),
                ):
                    v = got[key]
                    print(
                        f"navigation -> {what} ({args.agents} agents): p50 "
                        f"{statistics.median(v):.0f} ms, min {min(v):.0f}, max {max(v):.0f} "
                        f"({args.loads} loads)",
                        flush=True,
                    )
                if args.pages:  # 0: skip
                    delays = await event_delay(hive, browser, url, args.pages, args.events)
                    print(
                        f"event delay with {args.pages} pages: p50 {pct(delays, 50):.0f} ms, p99 "
                        f"{pct(delays, 99):.0f} ms, max {max(delays):.0f} ms "
                        f"({len(delays)} deliveries)",
                        flush=True,
                    )
                peak_rss = rss_mb()
                if args.tabs:  # 0: skip
                    acts, in_page = await tab_actions(browser, url, args.tabs, args.rounds)
                    print(
                        f"{args.tabs} tabs of one browser, all acting at once: click → answer "
                        f"shown p50 {statistics.median(acts):.0f} ms, max {max(acts):.0f} ms "
                        f"({len(acts)} actions); in the page, submit → answer shown p50 "
                        f"{statistics.median(in_page):.0f} ms, max {max(in_page):.0f} ms "
                        f"({len(in_page)})",
                        flush=True,
                    )
                await browser.close()
            print(f"core RSS: {base_rss:.0f} MB filled, {peak_rss:.0f} MB with {args.pages} pages")
    finally:
        shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--agents", type=int, default=100)
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--loads", type=int, default=10)
    ap.add_argument("--pages", type=int, default=20)
    ap.add_argument("--events", type=int, default=30)
    ap.add_argument("--tabs", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument(
        "--unread",
        action="store_true",
        help="leave every message unread (a backlog, not a history)",
    )
    asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    main()
