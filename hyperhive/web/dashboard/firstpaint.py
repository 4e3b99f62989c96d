"""The agent table's rows as the server renders them into the page (the first paint).

Why: on main the table appeared only after the page's scripts had downloaded, compiled and
built a hundred rows with DOM calls (p50 292 ms from navigation on a quiet machine, of which
the first byte was 16 ms). Now the page arrives with the rows in it; `dashboard.js` adopts
them (it keeps each element and records the state it was rendered from) and from then on
updates them in place as before.

Invariants:
- `agent_row` is a pure function of one container view (as `/api/state` serves it) and the
  state's `now`; it mirrors `containerHead` in `static/dashboard.js` element for element,
  class for class, so an adopted row is the row the script would have built. Times are UTC
  here; the script rewrites them in the browser's zone when it adopts the row.
- Every text goes through Jinja's autoescape (the template), never concatenated HTML.
"""

from __future__ import annotations

import math
import re
from typing import Any

from hyperhive.clock import parse_iso


def fmt_countdown(seconds: float) -> str:
    """`fmtCountdown` of dashboard.js: 42s, 4m 05s, 2h 07m."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {(s % 3600) // 60:02d}m"


def fmt_time(text: str | None) -> str:
    """HH:MM:SS (UTC) of an RFC 3339 time; "" when it does not parse."""
    if not text:
        return ""
    m = re.search(r"T(\d\d:\d\d:\d\d)", text)
    return m.group(1) if m else ""


def one_line(text: str, limit: int = 400) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def fmt_tokens(n: int | None) -> str:
    if n is None:
        return ""
    if n < 1000:
        return str(n)
    if n < 1_000_000:
        return f"{n / 1000:.{1 if n < 10_000 else 0}f}k"
    return f"{n / 1e6:.1f}M"


def plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _since(iso: str, now: float) -> float:
    try:
        return max(0.0, now - parse_iso(iso))
    except ValueError:
        return 0.0


def agent_row(c: dict[str, Any], now: float) -> dict[str, Any]:
    """What the row template needs of container view `c` (a dict of `views.ContainerView`)."""
    name = c["name"]
    flags: list[dict[str, str]] = []
    if c.get("needs_login"):
        flags.append({"text": "needs login"})
    if c.get("needs_update"):
        flags.append({"text": "needs update"})
    if c.get("budget_tripped"):
        flags.append({"text": "budget tripped", "budget": "tripped"})
    state_since = f"since {fmt_time(c['state_since'])}" if c.get("state_since") else ""
    turn = None
    if c["state"] == "in_turn" and c.get("state_since"):
        turn = {
            "since": c["state_since"],
            "title": f"in this turn since {fmt_time(c['state_since'])}",
            "text": fmt_countdown(_since(c["state_since"], now)),
        }
    doing = None
    if c.get("state_note"):
        doing = {
            "cls": "state-note",
            "title": c["state_note"],
            "text": one_line(c["state_note"], 120),
        }
    elif c.get("status_text"):
        doing = {
            "cls": "status-text",
            "title": c["status_text"],
            "text": one_line(c["status_text"], 120),
        }
    today_parts = []
    if c.get("tokens_today") is not None:
        today_parts.append(f"{fmt_tokens(c['tokens_today'])} tok")
    if c.get("cost_today_usd") is not None:
        today_parts.append(f"${c['cost_today_usd']:.2f}")
    budget = None
    if c.get("budget_used") is not None:
        used = float(c["budget_used"])
        pct = math.floor(used * 100 + 0.5)  # Math.round, not round()'s half to even
        budget = {"pct": pct, "value": _js_number(min(used, 1.0))}
    classes = ["row", "crow"]
    if c.get("pending"):
        classes.append("pending")
    if c.get("failed"):
        classes.append("failed")
    if not c.get("running"):
        classes.append("stopped")
    unread = int(c.get("unread") or 0)
    manager = c["role"] == "manager"
    return {
        "name": name,
        "classes": " ".join(classes),
        "busy": "true" if c.get("pending") else "false",
        "role": c["role"],
        "role_word": "manager" if manager else "agent",
        "role_leet": "m1nd" if manager else "ag3nt",
        "node": c.get("node") or "",
        "node_title": f"runs on {c['node']}" if c.get("node") else "this host",
        "pending_label": c.get("pending_label") if c.get("pending") else None,
        "tone": c["state_tone"],
        "state": c["state"],
        "state_label": c["state_label"],
        "state_title": " · ".join(x for x in (c.get("state_note"), state_since) if x)
        or c["state_label"],
        "flags": flags,
        "turn": turn,
        "doing": doing,
        "last": {"iso": c["last_activity"], "text": fmt_time(c["last_activity"])}
        if c.get("last_activity")
        else None,
        "unread": {
            "title": plural(unread, "unread message", "unread messages"),
            "text": f"{unread} unread",
        }
        if unread
        else None,
        "today": " · ".join(today_parts),
        "budget": budget,
    }


def _js_number(x: float) -> str:
    """`String(x)` in JavaScript for the numbers a budget share takes (1 → "1", 0.5 → "0.5")."""
    return str(int(x)) if x == int(x) else repr(x)


def agent_rows(state: dict[str, Any]) -> list[dict[str, Any]]:
    now = float(state.get("now") or 0.0)
    return [agent_row(c, now) for c in state.get("containers", [])]
