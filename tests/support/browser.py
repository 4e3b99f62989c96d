"""What the browser tests (tests/web, tests/webagent) share: Debian's Chromium, its flags, and
where full-page screenshots go.

Screenshots: by default a temp dir (a test run leaves the work tree as it was); with
`HIVE_UPDATE_SCREENSHOTS=1` the repo's `docs/screenshots/`, to refresh the pictures the docs
show. Either way every screenshot is taken, so rendering is exercised on every run."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

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


async def full_page_screenshot(page: Any, path: Path) -> None:
    """The whole page as one picture. Rows off screen are `content-visibility: auto` (skipped
    until scrolled to), and a full-page capture does not scroll, so they would come out blank
    (the message flow did): render everything first."""
    await page.add_style_tag(content="* { content-visibility: visible !important; }")
    await page.screenshot(path=str(path), full_page=True)


# -- WCAG contrast ---------------------------------------------------------------------------

# Every visible text node's colour against the background it is painted on (translucent layers
# composited over the first opaque one, the page's ground when none is; element opacity fades
# the text). Large text (24 px, or 18.66 px bold) needs 3:1, the rest 4.5:1 (WCAG 2.1 AA).
# Background images (the faint gradients) are not sampled; disabled controls are exempt.
CONTRAST_JS = """
(ground) => {
  const parse = (c) => {
    let m = /^rgba?\\(([^)]+)\\)$/.exec(c);
    if (m) {
      const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
      return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
    }
    m = /^color\\(srgb ([^)]+)\\)$/.exec(c);
    if (m) {
      const p = m[1].split(/[\\s\\/]+/).filter(Boolean).map(Number);
      return [p[0] * 255, p[1] * 255, p[2] * 255, p.length > 3 ? p[3] : 1];
    }
    return null;
  };
  const over = (top, bottom) => {
    const a = top[3];
    return [0, 1, 2].map((i) => top[i] * a + bottom[i] * (1 - a)).concat([1]);
  };
  const lum = (c) => {
    const ch = c.slice(0, 3).map((v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * ch[0] + 0.7152 * ch[1] + 0.0722 * ch[2];
  };
  const ratio = (a, b) => {
    const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p);
    return (x + 0.05) / (y + 0.05);
  };
  const base = parse(ground);
  const bgOf = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c[3] > 0) {
        layers.push(c);
        if (c[3] >= 1) break;
      }
    }
    let bg = base;
    for (const layer of layers.reverse()) bg = over(layer, bg);
    return bg;
  };
  const bad = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const seen = new Set();
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!el || seen.has(el) || !n.textContent.trim()) continue;
    seen.add(el);
    // inactive controls are exempt (WCAG 1.4.3): disabled ones, and a row with an action in flight
    if (el.closest("script, style, noscript, [disabled], :disabled, option, [aria-busy=true]")) continue;
    const range = document.createRange();
    range.selectNodeContents(n);
    const rect = range.getBoundingClientRect();
    if (rect.width < 2 || rect.height < 2) continue; // not painted (sr-only, closed details)
    const st = getComputedStyle(el);
    if (st.visibility !== "visible") continue;
    if (st.backgroundClip === "text" || st.webkitBackgroundClip === "text") continue; // gradient ink
    let fg = parse(st.webkitTextFillColor || st.color);
    if (!fg) continue;
    let alpha = fg[3];
    for (let e = el; e; e = e.parentElement) alpha *= Number(getComputedStyle(e).opacity);
    if (alpha === 0) continue;
    const bg = bgOf(el);
    const ink = over([fg[0], fg[1], fg[2], alpha], bg);
    const size = parseFloat(st.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(st.fontWeight) >= 700);
    const need = large ? 3 : 4.5;
    const r = ratio(ink, bg);
    if (r < need) {
      bad.push({
        text: n.textContent.trim().slice(0, 40),
        where: el.tagName.toLowerCase() + (el.className ? "." + String(el.className).split(" ").join(".") : ""),
        ratio: Math.round(r * 100) / 100,
        ink: ink.slice(0, 3).map(Math.round).join(","),
        bg: bg.slice(0, 3).map(Math.round).join(","),
      });
    }
  }
  return bad;
}
"""
GROUND = "rgb(7, 6, 10)"  # theme.css --hh-bg


async def low_contrast(page: object) -> list[dict[str, object]]:
    """The text nodes on `page` (a Playwright page) below WCAG AA contrast."""
    result: list[dict[str, object]] = await page.evaluate(CONTRAST_JS, GROUND)  # type: ignore[attr-defined]
    return result
