"""The core's side of the agent page (`hyperhive/web/proxy.py`): `/agent/<name>/` with the
page rendered by the core, the API forwarded to the harness's `web.sock` (SSE streamed), and
`/send` sent by the core as the operator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from hyperhive.core.hive import Hive
from hyperhive.harness.web import build_app
from hyperhive.web.proxy import agent_proxy_routes
from tests.support.waiting import eventually
from tests.support.webagent import SSE, FakeHarness, serve_tcp, serve_uds


@pytest.fixture
async def core_url(alice_hive: Hive) -> AsyncIterator[str]:
    async with serve_tcp(Starlette(routes=agent_proxy_routes(alice_hive))) as url:
        yield url


@pytest.fixture
async def harness_up(fake: FakeHarness, alice_hive: Hive) -> AsyncIterator[FakeHarness]:
    """The fake harness's app on alice's real web.sock (the path the core dials)."""
    async with serve_uds(build_app(fake), alice_hive.paths.web_sock("alice")):
        yield fake


async def test_page_is_rendered_by_the_core_even_when_the_harness_is_down(core_url: str) -> None:
    async with httpx.AsyncClient(base_url=core_url) as http:
        page = await http.get("/agent/alice/")
        assert page.status_code == 200 and '<h1 id="agent-name">alice</h1>' in page.text
        assert "state-offline" in page.text  # no harness connected to the core
        assert (await http.get("/agent/alice/static/agent.css")).status_code == 200
        redirect = await http.get("/agent/alice")
        assert redirect.status_code == 308 and redirect.headers["location"] == "/agent/alice/"
        down = await http.get("/agent/alice/api/state")
        assert down.status_code == 502
        assert down.json()["ok"] is False and down.json()["code"] == "unavailable"
        assert "alice's page is down" in down.json()["error"]


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/agent/Bad_Name/", 400, "invalid_name"),
        ("/agent/Bad_Name", 400, "invalid_name"),
        ("/agent/ghost/api/state", 404, "not_found"),
        ("/agent/ghost/", 404, "not_found"),
    ],
)
async def test_names_are_checked(core_url: str, path: str, status: int, code: str) -> None:
    async with httpx.AsyncClient(base_url=core_url) as http:
        resp = await http.get(path)
    assert resp.status_code == status
    assert resp.json()["ok"] is False and resp.json()["code"] == code


async def test_api_is_forwarded_and_sse_streams_through(
    core_url: str, harness_up: FakeHarness
) -> None:
    fake = harness_up
    async with httpx.AsyncClient(base_url=core_url, timeout=10) as http:
        state = (await http.get("/agent/alice/api/state")).json()
        assert state["name"] == "alice" and state["state"] == "waiting"
        history = (await http.get("/agent/alice/events/history")).json()
        last = history["last_id"]
        async with http.stream("GET", "/agent/alice/events/stream", params={"after": last}) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            sse = SSE(r)
            fake.start_turn()
            first = await sse.next()
            assert first["data"]["kind"] == "state" and first["id"] == str(last + 1)
            second = await sse.next()
            assert second["data"]["kind"] == "turn_start"
            assert second["data"]["from"] == "operator"
            assert fake.bus.subscribers  # the harness has a subscriber while we read
        # the reader hung up: the core closes its upstream stream, the harness unsubscribes
        await eventually(lambda: not fake.bus.subscribers, what="the upstream stream to close")
        fake.set_state("thinking")
        cancel = await http.post("/agent/alice/api/cancel")
        assert cancel.json() == {"ok": True, "cancelled": True, "state": "thinking"}
        await http.post("/agent/alice/api/compact")
        assert (fake.cancels, fake.compacts) == (1, 1)


async def test_send_is_the_operators_not_forwarded(
    core_url: str, harness_up: FakeHarness, alice_hive: Hive
) -> None:
    async with httpx.AsyncClient(base_url=core_url) as http:
        resp = await http.post("/agent/alice/send", json={"body": "hello from the page"})
        assert resp.json()["ok"] is True and resp.json()["sender"] == "operator"
        bad = await http.post("/agent/alice/send", json={"nobody": 1})
        assert bad.status_code == 400 and bad.json()["code"] == "bad_request"
    rows = await alice_hive.broker.recent("alice", 5)
    assert [(m.sender, m.body) for m in rows] == [("operator", "hello from the page")]
    assert resp.json()["ids"] == [rows[0].id]


async def test_only_data_comes_back_from_the_harness(
    core_url: str, alice_hive: Hive, fake: FakeHarness
) -> None:
    """A harness that answers HTML (or anything but JSON / an event stream) is refused: the
    page's markup and scripts only ever come from the core."""
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    async def evil(request: object) -> HTMLResponse:
        return HTMLResponse("<script>alert(1)</script>")

    rogue = Starlette(routes=[Route("/api/state", evil)])
    async with serve_uds(rogue, alice_hive.paths.web_sock("alice")):
        async with httpx.AsyncClient(base_url=core_url) as http:
            resp = await http.get("/agent/alice/api/state")
    assert resp.status_code == 502 and "not JSON" in resp.json()["error"]


async def test_the_operators_credentials_never_reach_the_harness(
    core_url: str, alice_hive: Hive
) -> None:
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def echo(request: Request) -> JSONResponse:
        return JSONResponse(dict(request.headers))

    async with serve_uds(
        Starlette(routes=[Route("/api/state", echo)]), alice_hive.paths.web_sock("alice")
    ):
        async with httpx.AsyncClient(base_url=core_url) as http:
            seen = (
                await http.get(
                    "/agent/alice/api/state",
                    headers={"Authorization": "Bearer s3cret", "Cookie": "hh_sid_7000=abc"},
                )
            ).json()
    assert "authorization" not in seen and "cookie" not in seen


async def test_a_link_in_place_of_the_page_socket_is_not_followed(
    core_url: str, alice_hive: Hive, short_tmp: Path
) -> None:
    """web/ is the agent's: `ln -s <another socket> web/web.sock` must not send the operator's
    request there (the core opens the socket without following and connects through the fd)."""
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    hits: list[str] = []

    async def other(request: object) -> JSONResponse:
        hits.append("hit")
        return JSONResponse({"ok": True})

    target = short_tmp / "other.sock"
    async with serve_uds(Starlette(routes=[Route("/api/state", other)]), target):
        link = alice_hive.paths.web_sock("alice")
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(target)
        async with httpx.AsyncClient(base_url=core_url) as http:
            resp = await http.get("/agent/alice/api/state")
    assert resp.status_code == 502 and "not a socket" in resp.json()["error"]
    assert hits == []
