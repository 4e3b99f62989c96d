"""The harness's HTTP API (`hyperhive/harness/web.py`) on a real unix socket, over a real
event bus and stats store, talking to a real core for inbox rows and sends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hyperhive.core.hive import Hive
from hyperhive.harness.web import build_app, installed_page
from tests.support.waiting import eventually
from tests.support.webagent import SSE, FakeHarness, recorded_turn, serve_uds, uds_client


@pytest.fixture
async def api(fake: FakeHarness, short_tmp: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_uds(build_app(fake, installed_page()), short_tmp / "web.sock") as sock:
        async with uds_client(sock) as client:
            yield client


async def test_history_keeps_event_ids_and_kinds(fake: FakeHarness, api: httpx.AsyncClient) -> None:
    fake.start_turn()
    fake.play(recorded_turn())
    await fake.end_turn()
    body = (await api.get("/events/history")).json()
    assert body["ok"] is True
    events = body["events"]
    assert body["last_id"] == events[-1]["id"] == fake.bus.last_id
    assert [e["id"] for e in events] == sorted({e["id"] for e in events})
    start = next(e for e in events if e["kind"] == "turn_start")
    # the payload's own `kind` and `id` (the message's) must not shadow the event's
    assert start["payload_kind"] == "message" and start["payload_id"] == 7
    assert start["from"] == "operator" and start["unread"] == 2
    end = next(e for e in events if e["kind"] == "turn_end")
    assert end["payload_kind"] == "ok" and end["ok"] is True
    assert body["state"] == "waiting"
    bash = next(e for e in events if e["kind"] == "tool_use" and e["name"] == "Bash")
    assert bash["input"]["command"].startswith("seq 1 40")


async def test_stream_resumes_without_gap_or_duplicate(
    fake: FakeHarness, api: httpx.AsyncClient
) -> None:
    first = fake.bus.publish("note", text="one").id
    fake.bus.publish("note", text="two")
    async with api.stream("GET", "/events/stream", params={"after": first}) as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        sse = SSE(resp)
        got = await sse.next()
        assert got["data"]["text"] == "two" and got["id"] == str(first + 1)
        fake.bus.publish("note", text="three")
        got = await sse.next()
        assert got["data"]["text"] == "three"
    # a reconnecting EventSource sends Last-Event-ID and keeps its first URL: the header wins
    async with api.stream(
        "GET", "/events/stream", params={"after": 0}, headers={"Last-Event-ID": str(first + 1)}
    ) as resp:
        got = await SSE(resp).next()
        assert got["data"]["text"] == "three"
    await eventually(lambda: not fake.bus.subscribers, what="the stream's subscription to end")


async def test_stream_from_the_future_says_reset(fake: FakeHarness, api: httpx.AsyncClient) -> None:
    async with api.stream("GET", "/events/stream", params={"after": 10_000}) as resp:
        got = await SSE(resp).next()
    assert got["event"] == "reset" and got["data"]["last_id"] == fake.bus.last_id


async def test_state_is_the_harness_own_with_inbox_and_stats(
    fake: FakeHarness, api: httpx.AsyncClient, alice_hive: Hive
) -> None:
    await alice_hive.broker.send("operator", "alice", "first")
    await alice_hive.broker.send("manager", "alice", "second")
    fake.start_turn()
    await fake.end_turn()
    fake.set_state("thinking")
    body = (await api.get("/api/state")).json()
    assert body["ok"] is True
    assert (body["name"], body["role"], body["model"], body["state"]) == (
        "alice",
        "agent",
        "haiku",
        "thinking",
    )
    assert body["unread"] == 2  # fresh from the core, not the count at the last turn_start
    assert [r["body"] for r in body["inbox"]] == ["second", "first"]
    assert body["inbox"][0]["from"] == "manager"
    assert body["login"] == {
        "logged_in": True,
        "how": "api key / model endpoint from the hive config",
    }
    assert body["stats"]["totals"]["turns"] == 1
    assert body["stats"]["recent"][0]["tool_breakdown"] == {"Bash": 1, "Read": 1, "Write": 1}
    assert body["last_event_id"] == fake.bus.last_id
    assert body["reported"] == {"state": "in_turn"}  # what the core is told (report_state)


async def test_a_failed_turn_shows_its_note_until_a_turn_succeeds(
    fake: FakeHarness, api: httpx.AsyncClient
) -> None:
    fake.start_turn()
    await fake.end_turn("failed", "API Error: 529 overloaded")
    fake.set_state("waiting")
    body = (await api.get("/api/state")).json()
    assert body["state"] == "waiting"
    assert body["reported"] == {"state": "failed", "note": "API Error: 529 overloaded"}
    fake.start_turn()
    await fake.end_turn()
    fake.set_state("waiting")
    assert (await api.get("/api/state")).json()["reported"] == {"state": "idle"}


async def test_state_survives_a_core_that_is_down(fake: FakeHarness, short_tmp: Path) -> None:
    fake.opts.socket = short_tmp / "nobody.sock"
    fake.unread = 4
    async with serve_uds(build_app(fake), short_tmp / "w2.sock") as sock:
        async with uds_client(sock) as client:
            body = (await client.get("/api/state")).json()
    assert body["ok"] is True and body["inbox"] == [] and body["unread"] == 4


async def test_control_routes(fake: FakeHarness, api: httpx.AsyncClient, alice_hive: Hive) -> None:
    assert (await api.post("/api/cancel")).json() == {
        "ok": True,
        "cancelled": False,
        "state": "waiting",
    }
    fake.set_state("thinking")
    assert (await api.post("/api/cancel")).json()["cancelled"] is True
    assert (await api.post("/api/compact")).json()["queued"] is True
    assert fake.cancels == 2 and fake.compacts == 1
    sent = (await api.post("/send", json={"body": "note to self"})).json()
    assert sent["ok"] is True and sent["sender"] == "alice"
    rows = await alice_hive.broker.recent("alice", 5)
    assert rows[0].sender == "alice" and rows[0].body == "note to self"


async def test_page_is_served_with_relative_urls(api: httpx.AsyncClient) -> None:
    resp = await api.get("/")
    assert resp.status_code == 200 and "text/html" in resp.headers["content-type"]
    html = resp.text
    assert 'src="static/agent.js?v=' in html and 'href="static/agent.css?v=' in html
    assert 'href="/' not in html and 'src="/' not in html
    js = await api.get("/static/agent.js")
    assert js.status_code == 200 and "EventSource" in js.text


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code"),
    [
        ("GET", "/events/stream?after=x", {}, 400, "bad_request"),
        ("GET", "/events/stream?after=-3", {}, 400, "bad_request"),
        ("POST", "/send", {"content": b"not json"}, 400, "bad_request"),
        ("POST", "/send", {"json": {"body": "  "}}, 400, "bad_request"),
        ("POST", "/send", {"json": {"body": "x" * 300_000}}, 400, "bad_request"),
        ("POST", "/send", {"json": ["body"]}, 400, "bad_request"),
        ("GET", "/nope", {}, 404, "not_found"),
        ("GET", "/send", {}, 405, "bad_request"),
        ("POST", "/api/state", {}, 405, "bad_request"),
        ("GET", "/api/cancel", {}, 405, "bad_request"),
    ],
)
async def test_every_error_is_in_the_one_shape(
    api: httpx.AsyncClient, method: str, path: str, kwargs: dict[str, Any], status: int, code: str
) -> None:
    resp = await api.request(method, path, **kwargs)
    assert resp.status_code == status
    body = resp.json()
    assert body["ok"] is False and body["code"] == code and body["error"]
