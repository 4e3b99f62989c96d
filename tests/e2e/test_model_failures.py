"""Model-side failures (issue #13): the real `claude` CLI in real sandboxes against a scripted
model that answers 429 / 500 / 529, hangs, or is not there at all."""

from __future__ import annotations

import json
import re
import socket
import sqlite3
from typing import Any

import httpx
import pytest

from hyperhive.core.hive import Hive
from hyperhive.db import connect_foreign_ro
from hyperhive.names import OPERATOR
from tests.e2e.conftest import BOTH_MODES, MakeHive, turns
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow

TASK = "TASK-42"  # in the operator's message; the retry prompt says "not repeated"
ON_TASK = f"{TASK}|not repeated"


def error(
    status: int, message: str, times: int = 0, when: str = ON_TASK, **extra: Any
) -> dict[str, Any]:
    """A rule failing alice's turns on the task (not her start-up event's turn)."""
    return {
        "id": f"e{status}",
        "agent": "alice",
        "when_user_regex": when,
        "times": times,
        "error": {"status": status, "message": message, **extra},
    }


def fine(rule_id: str = "fine", text: str = "done") -> dict[str, Any]:
    return {"id": rule_id, "agent": "alice", "when_user_regex": ON_TASK, "text": text}


def operator_rows(hive: Hive) -> list[dict[str, Any]]:
    return [r for r in turns(hive, "alice") if r["wake_from"] == "operator"]


def notes(hive: Hive, name: str) -> list[str]:
    path = hive.paths.state_dir(name) / "hyperhive-events.sqlite"
    if not path.exists():
        return []  # never create it: the harness would then open a read-only store
    conn = connect_foreign_ro(path)
    try:
        query = "SELECT payload_json FROM events WHERE kind = 'note' ORDER BY id"
        rows = conn.execute(query).fetchall()
    except sqlite3.OperationalError:  # not created yet
        return []
    finally:
        conn.close()
    return [str(json.loads(data).get("text", "")) for (data,) in rows]


def user_texts(body: dict[str, Any]) -> list[str]:
    """Every user text block of a Messages request, in order."""
    texts: list[str] = []
    for m in body.get("messages", []):
        if m.get("role") != "user":
            continue
        content = m.get("content")
        if isinstance(content, str):
            texts.append(content)
        else:
            texts += [b.get("text", "") for b in content if b.get("type") == "text"]
    return texts


async def reports(hive: Hive, to: str) -> list[str]:
    return [m.body for m in await hive.broker.recent(to, 50) if m.sender == "alice"]


async def test_overloaded_529_is_retried_within_the_turn(make_hive: MakeHive) -> None:
    """Was: CLAUDE_CODE_MAX_RETRIES=0 whenever the base URL held 127.0.0.1 (always, through
    the tunnel), so one 529 failed the turn."""
    hive, sim = await make_hive({"rules": [error(529, "Overloaded", times=2), fine()]})
    await hive.spawn("alice")
    await hive.broker.send(OPERATOR, "alice", f"an ordinary task {TASK}")
    await eventually(lambda: operator_rows(hive), 90, "alice's turn")
    rows = operator_rows(hive)
    assert [r["result_kind"] for r in rows] == ["ok"]
    assert sim.fired("e529") == 2 and sim.fired("fine") == 1


@BOTH_MODES
async def test_rate_limit_retries_honour_retry_after_and_never_repeat_the_prompt(
    make_hive: MakeHive, warm_seconds: float
) -> None:
    """Was: every retry sent the wake prompt again on top of the failed attempt (the request
    that finally went through held it three times), retry-after was ignored."""
    hive, sim = await make_hive(
        {"rules": [error(429, "slow down", times=4, retry_after=2), fine()]},
        endpoint={
            "retries": 1,
            "turn_attempts": 3,
            "retry_wait_seconds": 0.5,
            "rate_limit_wait_seconds": 0.5,
        },
    )
    await hive.spawn("alice")
    await hive.broker.send(OPERATOR, "alice", f"count the stars {TASK}")
    await eventually(lambda: len(operator_rows(hive)) == 3, 120, "three attempts")
    kinds = [r["result_kind"] for r in operator_rows(hive)]
    assert kinds == ["rate_limited", "rate_limited", "ok"]
    assert sim.fired("e429") == 4 and sim.fired("fine") == 1
    ok = next(r for r in sim.requests if r.rule_id == "fine")
    held = [t for t in user_texts(ok.body) if f"count the stars {TASK}" in t]
    assert len(held) == 1, (held, ok.body.get("messages"))
    assert "not repeated" in ok.latest_user_text
    waits = [
        float(m.group(1))
        for n in notes(hive, "alice")
        if (m := re.search(r"attempt \d of 3 in ([\d.]+) s", n))
    ]
    assert len(waits) == 2 and min(waits) >= 2  # the endpoint's retry-after, not 0.5 s


async def test_spent_attempts_are_reported_with_the_message_id(make_hive: MakeHive) -> None:
    """Was: a failed turn was silent and its message used up. Also: the note named the
    in-sandbox tunnel's address instead of the configured endpoint."""
    hive, sim = await make_hive(
        {"rules": [error(500, "boom")]},
        endpoint={"retries": 0, "turn_attempts": 2, "retry_wait_seconds": 0.2},
    )
    await hive.spawn("alice")
    [msg] = await hive.broker.send(OPERATOR, "alice", f"an unlucky task {TASK}")
    await eventually(lambda: reports(hive, OPERATOR), 90, "the report to the operator")
    await eventually(lambda: reports(hive, "manager"), 10, "the report to the manager")
    for to in (OPERATOR, "manager"):
        [report] = await reports(hive, to)
        assert (
            f"#{msg.id}" in report and f"an unlucky task {TASK}" in report and "2 attempt" in report
        )
    rows = operator_rows(hive)
    assert [r["result_kind"] for r in rows] == ["failed", "failed"]
    assert sim.fired("e500") == 2
    assert f"127.0.0.1:{sim.port}" in rows[-1]["note"], rows[-1]["note"]


async def test_cancel_during_the_wait_before_a_retry_ends_the_retries(make_hive: MakeHive) -> None:
    """Was: cancel between attempts answered `cancelled: false` and the loop went on."""
    scenario = {
        "rules": [
            # once: the CLI merges the failed attempt's prompt into the next user message
            error(500, "boom", times=1, when="FIRST-TASK"),
            {"id": "second", "agent": "alice", "when_user_contains": "SECOND-TASK", "text": "ok"},
        ]
    }
    hive, sim = await make_hive(
        scenario, endpoint={"retries": 0, "turn_attempts": 3, "retry_wait_seconds": 600}
    )
    await hive.spawn("alice")
    await hive.broker.send(OPERATOR, "alice", "the FIRST-TASK")
    await eventually(
        lambda: any("attempt 2 of 3" in n for n in notes(hive, "alice")), 90, "the retry wait"
    )
    transport = httpx.AsyncHTTPTransport(uds=str(hive.paths.web_sock("alice")))
    async with httpx.AsyncClient(transport=transport, base_url="http://alice") as web:
        answer = (await web.post("/api/cancel")).json()
    assert answer["ok"] is True and answer["cancelled"] is True
    await hive.broker.send(OPERATOR, "alice", "the SECOND-TASK")
    await eventually(lambda: sim.fired("second"), 60, "the next message's turn")
    assert sim.fired("e500") == 1  # no second attempt at the cancelled one
    assert await reports(hive, OPERATOR) == []  # the operator cancelled it: nothing to report


async def test_turn_timeout_cuts_a_hanging_model(make_hive: MakeHive) -> None:
    """Was: no timeout of our own; an endpoint that never answers held the turn ~6 minutes."""
    hang = {**fine("hang", "too late"), "delay_ms": 600_000}
    hive, sim = await make_hive(
        {"rules": [hang]},
        endpoint={"retries": 0, "turn_attempts": 1},
        defaults={"turn_timeout_seconds": 15},
    )
    await hive.spawn("alice")
    await hive.broker.send(OPERATOR, "alice", f"a task for a stuck model {TASK}")
    await eventually(lambda: operator_rows(hive), 90, "the timed-out turn")
    [row] = operator_rows(hive)
    assert row["result_kind"] == "cancelled"
    assert "timed out after 15 s" in row["note"] and "turn_timeout_seconds" in row["note"]
    assert sim.fired("hang") == 1
    await eventually(lambda: reports(hive, OPERATOR), 30, "the report to the operator")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_unreachable_endpoint_note_names_it(make_hive: MakeHive) -> None:
    """Was: ECONNRESET (the proxy accepted the connection, then closed it)."""
    port = closed_port()
    hive, _sim = await make_hive(
        {"rules": []},
        endpoint={
            "base_url": f"http://127.0.0.1:{port}/a/{{agent}}",
            "retries": 0,
            "turn_attempts": 1,
        },
    )
    await hive.spawn("alice")
    await hive.broker.send(OPERATOR, "alice", f"anyone there? {TASK}")
    await eventually(lambda: operator_rows(hive), 90, "the failed turn")
    [row] = operator_rows(hive)
    assert row["result_kind"] == "failed"
    assert f"http://127.0.0.1:{port}/a/alice" in row["note"], row["note"]
    assert "refused" in row["note"].lower() and "ECONNRESET" not in row["note"]
