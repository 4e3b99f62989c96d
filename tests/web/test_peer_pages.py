"""`/agent/<name>/` for an agent on another node: the dashboard of node A serves the page and
forwards its data routes to node B's peer endpoint (with the hive secret), which forwards them
to the agent's harness there. Two hives in one process on one PostgreSQL database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from hyperhive.assembly import build_hive
from hyperhive.client.host import HostClient
from hyperhive.config import Defaults, HiveConfig, NodeCfg
from hyperhive.core.hive import Hive
from hyperhive.core.nodes import NodesFeature
from hyperhive.httpserver import serve_unix
from hyperhive.paths import WEB_SOCK, HivePaths
from tests.support.waiting import eventually
from tests.web.conftest import DashClient

CFG = HiveConfig(
    defaults=Defaults(runtime="external"),
    node=NodeCfg(heartbeat_seconds=0.2, lost_after_seconds=5.0),
)


def harness_app() -> Starlette:
    async def state(request: Request) -> Response:
        return JSONResponse({"ok": True, "from": "the harness on node-b"})

    async def cancel(request: Request) -> Response:
        return JSONResponse({"ok": True, "cancelled": True})

    async def stream(request: Request) -> Response:
        async def gen() -> AsyncIterator[bytes]:
            yield b'data: {"hello": "from node-b"}\n\n'

        return StreamingResponse(gen(), media_type="text/event-stream")

    return Starlette(
        routes=[
            Route("/api/state", state),
            Route("/api/cancel", cancel, methods=["POST"]),
            Route("/events/stream", stream),
        ]
    )


def nodes_of(hive: Hive) -> NodesFeature:
    f = hive.feature("nodes")
    assert isinstance(f, NodesFeature)
    return f


async def test_agent_page_of_another_node(short_tmp: Path, pg_url: Callable[[], str]) -> None:
    url = pg_url()
    async with (
        build_hive(HivePaths(short_tmp / "a"), CFG, database=url, node="node-a") as a,
        build_hive(HivePaths(short_tmp / "b"), CFG, database=url, node="node-b") as b,
    ):
        await HostClient(a.paths.host_sock).call("spawn", name="alice", node="node-b")
        await eventually(
            lambda: a.registry.get("alice") is not None, what="a knows alice", timeout=60
        )
        sock = b.paths.web_dir("alice") / WEB_SOCK
        sock.parent.mkdir(parents=True, exist_ok=True)
        server = asyncio.create_task(serve_unix(harness_app(), sock))
        try:
            await eventually(sock.exists, what="the harness page listening", timeout=60)
            async with httpx.AsyncClient(base_url=a.dashboard_url, trust_env=False) as raw:
                http = DashClient(raw)
                await http.open()
                dash = (await http.get("/api/state")).json()
                nodes = {c["name"]: c["node"] for c in dash["containers"]}
                assert nodes == {"manager": "node-a", "alice": "node-b"}  # the whole hive
                page = await http.get("/agent/alice/")
                assert page.status_code == 200 and "alice" in page.text
                state = await http.get("/agent/alice/api/state")
                assert state.json() == {"ok": True, "from": "the harness on node-b"}
                cancel = await http.post("/agent/alice/api/cancel")
                assert cancel.json() == {"ok": True, "cancelled": True}
                async with raw.stream("GET", "/agent/alice/events/stream") as resp:
                    assert resp.headers["content-type"].startswith("text/event-stream")
                    lines = [line async for line in resp.aiter_lines() if line]
                    assert lines == ['data: {"hello": "from node-b"}']
            # node-b's peer endpoint itself: nothing without the hive secret
            peer = nodes_of(b).peer_url
            async with httpx.AsyncClient(base_url=peer, trust_env=False) as http:
                r = await http.get("/peer/agent/alice/api/state")
                assert r.status_code == 401 and r.json()["ok"] is False
                auth = {"authorization": f"Bearer {nodes_of(b).secret}"}
                r = await http.get("/peer/agent/alice/api/state", headers=auth)
                assert r.json()["from"] == "the harness on node-b"
                r = await http.get("/peer/agent/alice/etc/passwd", headers=auth)
                assert r.status_code == 404 and r.json()["code"] == "not_found"
        finally:
            server.cancel()
            await asyncio.gather(server, return_exceptions=True)
