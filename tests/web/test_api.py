"""The dashboard's JSON API over real HTTP: the one error shape on every route, forged and
unauthenticated requests refused, the OpenAPI document, and the event feed's no-gap/no-dup
replay."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from hyperhive.core.hive import Hive
from hyperhive.errors import ConfigError
from hyperhive.paths import HivePaths
from hyperhive.runtime.fake import FakeWorld
from hyperhive.web.dashboard.api import api_specs
from tests.support.httpapi import assert_error, fill
from tests.support.waiting import eventually
from tests.web.conftest import DashClient, dash_config, fake_hive


async def call(c: DashClient, method: str, url: str, raw: bytes | None = None) -> httpx.Response:
    if method == "GET":
        return await c.get(url)
    headers = {"X-CSRF-Token": c.csrf, "Content-Type": "application/json"}
    return await c.http.post(url, content=raw if raw is not None else b"{}", headers=headers)


async def test_every_route_answers_bad_input_in_the_one_error_shape(
    dhive: Hive, client: DashClient
) -> None:
    specs = api_specs(dhive)
    walked = 0
    for spec in specs:
        if spec.path == "/api/state":
            continue
        if "name" in spec.path_params:
            for bad in ("..%2Fx", "Bad_Name", "x" * 64):
                r = await call(client, spec.method, fill(spec.path, name=bad))
                assert_error(r, 400, "invalid_name")
            r = await call(client, spec.method, fill(spec.path, name="ghost"))
            assert_error(r, 404, "not_found")
            walked += 1
        if "id" in spec.path_params:
            for bad in ("abc", "0", "-1", "1.5", "9" * 30):
                r = await call(client, spec.method, fill(spec.path, id=bad))
                assert_error(r, 400, "bad_request")
            r = await call(client, spec.method, fill(spec.path, id="4242"))
            assert_error(r, 404, "not_found")
            walked += 1
        if spec.method == "POST":
            url = fill(spec.path, name="manager", id="1")
            for raw in (b"{not json", b"[1, 2]", b'"text"', b'{"unknown_field": 1}'):
                r = await call(client, "POST", url, raw)
                assert_error(r, 400, "bad_request")
            walked += 1
    assert walked >= len(specs) - 1

    # body fields and query parameters are validated too
    cases: list[tuple[str, str, Any, int, str]] = [
        ("POST", "/api/request-spawn", {"name": "../x"}, 400, "invalid_name"),
        ("POST", "/api/request-spawn", {"name": "operator"}, 400, "invalid_name"),
        ("POST", "/api/request-spawn", {"name": "manager"}, 409, "conflict"),
        ("POST", "/api/request-spawn", {}, 400, "bad_request"),
        ("POST", "/api/inbox/reply", {"to": "ghost", "body": "hi"}, 404, "not_found"),
        ("POST", "/api/inbox/reply", {"to": "../x", "body": "hi"}, 400, "invalid_name"),
        ("POST", "/api/inbox/reply", {"to": "manager", "body": ""}, 400, "bad_request"),
        ("POST", "/api/questions/1/answer", {"options": "eu"}, 400, "bad_request"),
        ("POST", "/api/approvals/1/approve", {"note": 5}, 400, "bad_request"),
        ("POST", "/api/tombstones/manager/revive", {}, 409, "conflict"),
        ("POST", "/api/agents/manager/destroy", {}, 403, "forbidden"),
        ("GET", "/api/logs/manager?lines=abc", None, 400, "bad_request"),
        ("GET", "/api/logs/manager?lines=0", None, 400, "bad_request"),
        ("GET", "/api/logs/manager?source=/etc/passwd", None, 400, "bad_request"),
        ("GET", "/api/inbox?limit=-5", None, 400, "bad_request"),
        ("GET", "/dashboard/history?since=x", None, 400, "bad_request"),
        ("GET", "/dashboard/stream?since=x", None, 400, "bad_request"),
        ("GET", "/api/no-such-route", None, 404, "not_found"),
        ("POST", "/api/state", {}, 405, None),  # type: ignore[list-item]
    ]
    for method, url, body, status, code in cases:
        if method == "GET":
            r = await client.get(url)
        else:
            r = await client.post(url, json=body)
        assert_error(r, status, code)


async def test_answering_a_resolved_question_is_a_conflict(dhive: Hive, client: DashClient) -> None:
    q = await dhive.questions.ask("manager", "ok?", ["yes", "no"])
    r = await client.post(f"/api/questions/{q.id}/answer", json={"options": ["yes", "no"]})
    assert_error(r, 400, "bad_request")  # one option only
    r = await client.post(f"/api/questions/{q.id}/answer", json={"options": ["yes"]})
    assert r.status_code == 200 and r.json()["answer"] == "yes"
    r = await client.post(f"/api/questions/{q.id}/answer", json={"options": ["no"]})
    assert_error(r, 409, "conflict")
    r = await client.post(f"/api/questions/{q.id}/cancel")
    assert_error(r, 409, "conflict")


async def test_state_document(dhive: Hive, client: DashClient) -> None:
    await dhive.spawn("alice")
    await dhive.questions.ask("alice", "why?", ttl_seconds=90)
    await dhive.broker.send("alice", "operator", "hello operator")
    r = await client.get("/api/state")
    state = r.json()
    assert state["ok"] is True and state["epoch"] == dhive.hub.epoch
    assert [c["name"] for c in state["containers"]] == ["manager", "alice"]
    assert state["questions"][0]["countdown"].startswith("⏳ 1m ")
    assert state["inbox"][0]["body"] == "hello operator" and state["inbox_unread"] == 1
    for key in ("transients", "tombstones", "approvals", "any_stale", "now", "seq"):
        assert key in state


# -- forgery and authentication ----------------------------------------------------------------


async def test_cross_origin_posts_are_refused(dhive: Hive, client: DashClient) -> None:
    url = "/api/agents/manager/pause"
    forged = [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
    ]
    for headers in forged:
        r = await client.post(url, headers=headers)
        assert_error(r, 403, "forbidden")
        assert "cross-site" in r.json()["error"]
    # the page's own token but no session cookie (another browser): refused
    async with httpx.AsyncClient(base_url=dhive.dashboard_url) as other:
        r = await other.post(url, headers={"X-CSRF-Token": client.csrf})
        assert_error(r, 403, "forbidden")
    r = await client.http.post(url)  # no token at all
    assert_error(r, 403, "forbidden")
    r = await client.post(url, headers={"X-CSRF-Token": "0" * 64})
    assert_error(r, 403, "forbidden")
    assert not dhive.registry.require("manager").paused
    # same origin with the session's token: accepted
    origin = dhive.dashboard_url.rstrip("/")
    r = await client.post(url, headers={"Origin": origin, "Sec-Fetch-Site": "same-origin"})
    assert r.status_code == 200 and r.json()["ok"] is True
    assert dhive.registry.require("manager").paused


async def test_loopback_dashboard_refuses_foreign_host_headers(
    dhive: Hive, client: DashClient
) -> None:
    """A DNS-rebinding page reaches the port under its own host name: refused."""
    r = await client.get("/api/state", headers={"Host": "evil.example:7000"})
    assert_error(r, 403, "forbidden")
    r = await client.get("/api/state", headers={"Host": "localhost"})
    assert r.status_code == 200


async def test_non_loopback_bind_without_a_token_refuses_to_start(
    paths: HivePaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HIVE_DASHBOARD", raising=False)  # the config's address must win
    config = dash_config(listen="0.0.0.0:0")
    with pytest.raises(ConfigError, match="operator token"):
        async with fake_hive(paths, config, FakeWorld()):
            pass


async def test_a_token_guards_every_request(
    paths: HivePaths, short_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HIVE_DASHBOARD", raising=False)  # the config's address must win
    token = "s3cret-operator-token-0123456789"
    token_file = short_tmp / "token"
    token_file.write_text(token + "\n")
    config = dash_config(listen="0.0.0.0:0", token_file=str(token_file))
    async with fake_hive(paths, config, FakeWorld()) as hive:
        port = hive.dashboard_url.rsplit(":", 1)[1].rstrip("/")
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base) as anon:
            r = await anon.get("/api/state")
            assert_error(r, 401, "unauthorized")
            r = await anon.get("/")
            assert r.status_code == 401 and "/login?token=" in r.text
            r = await anon.get("/api/state", headers={"Authorization": "Bearer wrong"})
            assert_error(r, 401, "unauthorized")
            r = await anon.get("/login?token=wrong")
            assert r.status_code == 401
            r = await anon.get("/static/theme.css")  # assets are public
            assert r.status_code == 200
        bearer = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=base, headers=bearer) as script:
            r = await script.get("/api/state")
            assert r.status_code == 200
            r = await script.post("/api/agents/manager/pause")  # Bearer: no CSRF token needed
            assert r.status_code == 200
            r = await script.post(
                "/api/agents/manager/unpause", headers={"Origin": "http://evil.example"}
            )
            assert_error(r, 403, "forbidden")
        async with httpx.AsyncClient(base_url=base) as browser:
            r = await browser.get(f"/login?token={token}")
            assert r.status_code == 303 and r.headers["location"] == "/"
            assert f"hh_token_{port}" in r.headers["set-cookie"]
            assert "HttpOnly" in r.headers["set-cookie"]
            r = await browser.get("/")
            assert r.status_code == 200 and token not in r.text
            c = DashClient(browser)
            await c.open()
            r = await c.post("/api/agents/manager/unpause")
            assert r.status_code == 200


# -- the OpenAPI document ----------------------------------------------------------------------


async def test_openapi_describes_every_route(dhive: Hive, client: DashClient) -> None:
    doc = (await client.get("/api/openapi.json")).json()
    assert doc["openapi"].startswith("3.")
    for spec in api_specs(dhive):
        op = doc["paths"][spec.openapi_path][spec.method.lower()]
        assert op["summary"] == spec.summary
        assert op["responses"]["default"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Error"
        }
    assert "/dashboard/stream" in doc["paths"] and "/dashboard/history" in doc["paths"]
    answer = doc["paths"]["/api/questions/{id}/answer"]["post"]
    assert answer["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/AnswerBody"
    )
    assert set(doc["components"]["schemas"]["AnswerBody"]["properties"]) == {"options", "text"}


# -- the event feed ----------------------------------------------------------------------------


async def read_frames(resp: httpx.Response, want: int, into: list[dict[str, Any]]) -> None:
    """Parse SSE frames from `resp` into `into` until it holds `want` `hive` frames."""
    frame: dict[str, Any] = {}
    async for line in resp.aiter_lines():
        if line == "":
            if "event" in frame:
                into.append(frame)
                if sum(1 for f in into if f["event"] == "hive") >= want:
                    return
            frame = {}
            continue
        key, _, value = line.partition(":")
        frame[key] = value.lstrip(" ")


async def test_history_then_stream_has_no_gap_and_no_duplicate(
    dhive: Hive, client: DashClient
) -> None:
    for i in range(3):
        await dhive.broker.send("operator", "manager", f"before {i}")
    hist = (await client.get("/dashboard/history")).json()
    assert hist["epoch"] == dhive.hub.epoch
    seqs = [e["seq"] for e in hist["events"]]
    assert seqs == sorted(seqs) and seqs[-1] == hist["seq"]
    for i in range(3):  # between history and stream: must not be lost
        await dhive.broker.send("operator", "manager", f"between {i}")
    frames: list[dict[str, Any]] = []
    async with client.http.stream("GET", f"/dashboard/stream?since={hist['seq']}") as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        reader = asyncio.ensure_future(read_frames(resp, 6, frames))
        await asyncio.sleep(0)
        for i in range(3):
            await dhive.broker.send("operator", "manager", f"after {i}")
        await asyncio.wait_for(reader, 10)
    assert frames[0]["event"] == "hello"
    assert json.loads(frames[0]["data"])["epoch"] == dhive.hub.epoch
    events = [json.loads(f["data"]) for f in frames if f["event"] == "hive"]
    got = [e["seq"] for e in events]
    assert got == list(range(hist["seq"] + 1, hist["seq"] + 1 + len(got)))  # no gap, no dup
    assert [f["id"] for f in frames if f["event"] == "hive"] == [str(s) for s in got]
    bodies = [e["data"]["preview"] for e in events if e["kind"] == "message_sent"]
    assert bodies[:3] == ["between 0", "between 1", "between 2"]


async def test_last_event_id_wins_over_since(dhive: Hive, client: DashClient) -> None:
    await dhive.broker.send("operator", "manager", "one")
    mark = dhive.hub.last_seq
    await dhive.broker.send("operator", "manager", "two")
    frames: list[dict[str, Any]] = []
    headers = {"Last-Event-ID": str(mark)}
    async with client.http.stream("GET", "/dashboard/stream?since=0", headers=headers) as resp:
        await asyncio.wait_for(read_frames(resp, 1, frames), 10)
    first = json.loads(next(f for f in frames if f["event"] == "hive")["data"])
    assert first["seq"] == mark + 1


async def test_open_streams_end_when_the_hive_closes(
    paths: HivePaths, caplog: pytest.LogCaptureFixture
) -> None:
    hive = fake_hive(paths, dash_config(), FakeWorld())
    await hive.start()
    async with httpx.AsyncClient(base_url=hive.dashboard_url, timeout=30) as http:
        async with http.stream("GET", "/dashboard/stream") as resp:
            lines = resp.aiter_lines()
            assert (await anext(lines)).startswith("event: hello")
            await hive.aclose()
            async for _ in lines:  # the stream ends
                pass
    # it ended on its own, not by uvicorn cancelling it after the graceful-shutdown timeout
    assert not [r for r in caplog.records if "graceful shutdown" in r.getMessage()]


async def test_a_client_hanging_up_unsubscribes(dhive: Hive, client: DashClient) -> None:
    before = dhive.hub.subscribers
    async with client.http.stream("GET", "/dashboard/stream") as resp:
        lines = resp.aiter_lines()
        assert (await anext(lines)).startswith("event: hello")
        await eventually(lambda: dhive.hub.subscribers == before + 1, what="the subscription")
    await eventually(lambda: dhive.hub.subscribers == before, what="the unsubscription")
