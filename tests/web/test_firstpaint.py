"""The server-rendered agent rows (`web/dashboard/firstpaint.py`): the same words and numbers
`containerHead` in dashboard.js shows."""

from __future__ import annotations

from typing import Any

from hyperhive.clock import parse_iso
from hyperhive.web.dashboard.firstpaint import agent_row, fmt_countdown, fmt_tokens, one_line

SINCE = "2026-12-07T06:00:00.000000Z"


def view(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "bob",
        "role": "agent",
        "running": True,
        "failed": False,
        "pending": None,
        "pending_label": None,
        "needs_login": False,
        "needs_update": False,
        "budget_tripped": False,
        "state": "idle",
        "state_label": "idle",
        "state_tone": "ok",
        "state_note": None,
        "state_since": None,
        "status_text": None,
        "unread": 0,
        "last_activity": None,
        "tokens_today": None,
        "cost_today_usd": None,
        "budget_used": None,
        "node": None,
    }
    return base | over


def test_the_formats_match_the_scripts() -> None:
    assert [fmt_countdown(s) for s in (-3, 42, 245, 7620)] == ["0s", "42s", "4m 05s", "2h 07m"]
    assert [fmt_tokens(n) for n in (None, 999, 1234, 56_789, 2_500_000)] == [
        "",
        "999",
        "1.2k",
        "57k",
        "2.5M",
    ]
    assert one_line("a\n  b\tc ", 400) == "a b c"
    assert one_line("x" * 10, 5) == "xxxx…"


def test_a_row_in_a_turn() -> None:
    r = agent_row(
        view(
            state="in_turn",
            state_label="in turn",
            state_since=SINCE,
            state_note="running Bash",
            unread=1,
            last_activity=SINCE,
            tokens_today=12_345,
            cost_today_usd=0.5,
            budget_used=0.125,
            budget_tripped=True,
        ),
        parse_iso(SINCE) + 65,
    )
    assert r["classes"] == "row crow"
    assert r["turn"] == {"since": SINCE, "title": "in this turn since 06:00:00", "text": "1m 05s"}
    assert r["doing"] == {"cls": "state-note", "title": "running Bash", "text": "running Bash"}
    assert r["state_title"] == "running Bash · since 06:00:00"
    assert r["unread"] == {"title": "1 unread message", "text": "1 unread"}
    assert r["today"] == "12k tok · $0.50"
    assert r["budget"] == {"pct": 13, "value": "0.125"}  # Math.round: half up
    assert r["flags"] == [{"text": "budget tripped", "budget": "tripped"}]
    assert (r["role_word"], r["role_leet"], r["node_title"]) == ("agent", "ag3nt", "this host")


def test_a_stopped_failed_manager_with_a_pending_action() -> None:
    r = agent_row(
        view(
            name="boss",
            role="manager",
            running=False,
            failed=True,
            pending="restarting",
            pending_label="restarting…",
            status_text="  two\nlines ",
            node="n2",
        ),
        0.0,
    )
    assert r["classes"] == "row crow pending failed stopped" and r["busy"] == "true"
    assert r["pending_label"] == "restarting…"
    assert r["doing"] == {"cls": "status-text", "title": "  two\nlines ", "text": "two lines"}
    assert (r["role_word"], r["node"], r["node_title"]) == ("manager", "n2", "runs on n2")
    assert r["turn"] is None and r["unread"] is None and r["budget"] is None
