"""The agent's own HTTP API, served by its harness on a unix socket (`web.sock` in its socket
directory) so it works in every network mode; the core proxies it to the operator.

Routes (JSON; errors in the one error shape):
    GET  /api/state        name, role, model, authoritative state, unread, login, inbox, stats
    GET  /events/history   the ring (last 500 events) and the last id
    GET  /events/stream    SSE from `?after=ID` or the `Last-Event-ID` header: no gap, no dup
    POST /api/cancel       interrupt the running turn
    POST /api/compact      compact the conversation (now if idle, else after the turn)
    POST /send             inject a message into this agent's own inbox (sender: the agent);
                           operator messages go through the core's proxy instead
    GET  /                 the page (see hyperhive/web), when installed
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sse_starlette.sse import EventSourceResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hyperhive.errors import BadRequest, HiveError, error_body
from hyperhive.httpserver import serve_unix

if TYPE_CHECKING:
    from hyperhive.harness.loop import Harness

logger = logging.getLogger(__name__)


def _err(exc: HiveError) -> JSONResponse:
    return JSONResponse(error_body(exc), status_code=exc.http_status)


def login_state(h: Harness) -> dict[str, Any]:
    creds = (h.config_dir / ".credentials.json").exists()
    if h.opts.api_key or h.opts.base_url:
        return {"logged_in": True, "how": "api key / model endpoint from the hive config"}
    if creds:
        return {"logged_in": True, "how": "claude login"}
    return {"logged_in": False, "how": f"run `hive login {h.name}` on the host"}


async def state_body(h: Harness) -> dict[str, Any]:
    inbox: list[dict[str, Any]] = []
    with contextlib.suppress(Exception):
        answer = await h.client.request_answer({"cmd": "recent", "limit": 20})
        inbox = answer.body.get("rows", []) if answer.body.get("ok") else []
    recent = await h.stats.recent(10)
    totals = await h.stats.totals()
    return {
        "ok": True,
        "name": h.name,
        "role": h.kind,
        "model": h.model,
        "state": h.state,
        "unread": h.unread,
        "login": login_state(h),
        "inbox": inbox,
        "stats": {"recent": recent, "totals": totals},
        "last_event_id": h.bus.last_id,
    }


def build_app(h: Harness, page: Any = None) -> Starlette:
    async def api_state(request: Request) -> Response:
        return JSONResponse(await state_body(h))

    async def history(request: Request) -> Response:
        return JSONResponse(
            {"ok": True, "last_id": h.bus.last_id, "events": [e.to_json() for e in h.bus.history()]}
        )

    async def stream(request: Request) -> Response:
        raw = request.query_params.get("after") or request.headers.get("last-event-id") or "0"
        try:
            after = int(raw)
        except ValueError:
            return _err(BadRequest(f"after must be an event id (an integer), got {raw!r}"))

        async def gen() -> AsyncIterator[dict[str, str]]:
            async for ev in h.bus.follow(after):
                yield {
                    "id": str(ev.id),
                    "event": "hive",
                    "data": json.dumps(ev.to_json(), default=str),
                }

        return EventSourceResponse(gen(), ping=15)

    async def cancel(request: Request) -> Response:
        running = await h.cancel()
        return JSONResponse({"ok": True, "cancelled": running})

    async def compact(request: Request) -> Response:
        h.request_compact()
        return JSONResponse({"ok": True, "queued": True})

    async def send(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return _err(BadRequest('body must be JSON: {"body": "..."}'))
        text = body.get("body") if isinstance(body, dict) else None
        if not isinstance(text, str) or not text.strip():
            return _err(BadRequest("field 'body' must be a non-empty string"))
        try:
            answer = await h.client.request({"cmd": "send", "to": h.name, "body": text})
        except HiveError as exc:
            return _err(exc)
        return JSONResponse({"ok": True, "ids": answer["ids"]})

    routes = [
        Route("/api/state", api_state),
        Route("/events/history", history),
        Route("/events/stream", stream),
        Route("/api/cancel", cancel, methods=["POST"]),
        Route("/api/compact", compact, methods=["POST"]),
        Route("/send", send, methods=["POST"]),
    ]
    if page is not None:
        routes.extend(page(h))
    return Starlette(routes=routes)


async def serve_web(h: Harness, path: Path) -> None:
    """Serve the API (and the page, when installed) on a unix socket until cancelled."""
    page = None
    with contextlib.suppress(ImportError):
        from hyperhive.web.agent_page import page_routes

        page = page_routes
    await serve_unix(build_app(h, page), path)
