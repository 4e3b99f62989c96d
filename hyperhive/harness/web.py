"""The agent's own HTTP API, served by its harness on a unix socket (`web.sock` in its socket
directory) so it works in every network mode; the core proxies it to the operator (at
`/agent/<name>/` and on the agent's sticky port, see `hyperhive.web.proxy`).

Routes (JSON; every error in the one error shape `{"ok": false, "error", "code"}`):
    GET  /api/state        name, role, model, authoritative state (+ `reported`: what the core
                           was told, e.g. failed with the failed turn's note), unread, login,
                           inbox, stats
    GET  /events/history   the ring (last 500 events), the last id and the state right now
    GET  /events/stream    SSE (`id:` = event id, `data:` = the event) after `Last-Event-ID`,
                           else `?after=ID`, else 0: no gap, no duplicate; a `reset`
                           event (the page starts over) when the store was reset, the ring
                           no longer holds what it asks for, or the stream fell behind
    POST /api/cancel       interrupt the running turn
    POST /api/compact      compact the conversation (now if idle, else after the turn)
    POST /send             inject a message into this agent's own inbox (sender: the agent);
                           the operator's messages go through the core's proxy instead
    GET  /                 the page (hyperhive/agentpage.py, which the core's proxy serves
                           too: hyperhive/web/proxy.py)

Invariants:
- The state served is the harness's own (`Harness.state`), never guessed from events.
- An event is `{id, ts, kind, ...payload}` with the envelope winning: a payload key named like
  an envelope key is kept as `payload_<key>` (turn_start's message id and kind, turn_end's
  outcome kind), so an event id is never shadowed.
- The harness's main client is parked in a 180 s `recv` most of the time, so the page talks to
  the core on a second connection of its own (`PageClient`) with short timeouts: the page
  never waits on the agent's loop, and a core that is down costs it an empty inbox, not a hang.
- On reconnect the browser's `Last-Event-ID` wins over the `after` in the URL it first opened,
  so a reconnected stream resumes where it broke off instead of replaying.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sse_starlette.sse import EventSourceResponse
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from hyperhive.client.agent import AgentClient, RetryPolicy
from hyperhive.errors import BadRequest, HiveError, Unavailable
from hyperhive.eventring import ResyncNeeded
from hyperhive.harness.events import AgentEvent
from hyperhive.httpapi import error_response, http_error_response, read_message_body
from hyperhive.httpserver import serve_unix

if TYPE_CHECKING:
    from hyperhive.harness.loop import Harness

logger = logging.getLogger(__name__)

CORE_TIMEOUT = 3.0  # seconds the page waits on the core for inbox rows / unread / send
INBOX_ROWS = 30
STATS_ROWS = 10
SSE_PING = 15
ENVELOPE = ("id", "ts", "kind")


class PageClient:
    """The page's own connection to the core (one request at a time, short timeouts)."""

    def __init__(self, socket: Path) -> None:
        self._client = AgentClient(socket, retry=RetryPolicy((0.1,), 1.0))

    async def request(self, body: dict[str, Any]) -> dict[str, Any]:
        try:
            async with asyncio.timeout(CORE_TIMEOUT):
                return await self._client.request(body)
        except TimeoutError:
            await self._client.aclose()  # a late answer must not be read as the next one's
            raise Unavailable(f"the hive core did not answer {body['cmd']!r} in time") from None

    async def aclose(self) -> None:
        await self._client.aclose()


def event_json(ev: AgentEvent) -> dict[str, Any]:
    """An event as pages see it: its payload with `id`, `ts` and `kind` the event's own.

    A payload key that collides with those (turn_start's message `id` and `kind`, turn_end's
    outcome `kind`) is kept as `payload_<key>`, so the event id can never be shadowed."""
    out: dict[str, Any] = {}
    for key, value in ev.payload.items():
        out[f"payload_{key}" if key in ENVELOPE else key] = value
    out.update(id=ev.id, ts=ev.ts, kind=ev.kind)
    return out


def login_state(h: Harness) -> dict[str, Any]:
    if h.opts.api_key or h.opts.base_url:
        return {"logged_in": True, "how": "api key / model endpoint from the hive config"}
    if (h.config_dir / ".credentials.json").exists():
        return {"logged_in": True, "how": "claude login"}
    return {"logged_in": False, "how": f"run `hive login {h.name}` on the host"}


async def state_body(h: Harness, core: PageClient) -> dict[str, Any]:
    inbox: list[dict[str, Any]] = []
    unread = h.unread
    with contextlib.suppress(HiveError):
        inbox = (await core.request({"cmd": "recent", "limit": INBOX_ROWS})).get("rows", [])
    with contextlib.suppress(HiveError):
        unread = int((await core.request({"cmd": "whoami"})).get("unread", unread))
    recent = await h.stats.recent(STATS_ROWS)
    totals = await h.stats.totals()
    return {
        "ok": True,
        "name": h.name,
        "role": h.kind,
        "model": h.model,
        "state": h.state,
        "reported": h.tracker.report(),  # what the core was told: failed + note, in_turn, ...
        "unread": unread,
        "login": login_state(h),
        "inbox": inbox,
        "stats": {"recent": recent, "totals": totals},
        "last_event_id": h.bus.last_id,
    }


def _after(request: Request) -> int:
    raw = request.headers.get("last-event-id") or request.query_params.get("after") or "0"
    try:
        after = int(raw)
    except ValueError:
        raise BadRequest(f"after must be an event id (an integer), got {raw!r}") from None
    if after < 0:
        raise BadRequest(f"after must be an event id (>= 0), got {after}")
    return after


def api_routes(h: Harness, core: PageClient) -> list[BaseRoute]:
    async def api_state(request: Request) -> Response:
        return JSONResponse(await state_body(h, core))

    async def history(request: Request) -> Response:
        return JSONResponse(
            {
                "ok": True,
                "last_id": h.bus.last_id,
                "state": h.state,
                "events": [event_json(e) for e in h.bus.history()],
            }
        )

    async def stream(request: Request) -> Response:
        after = _after(request)

        async def gen() -> AsyncIterator[dict[str, str]]:
            if after > h.bus.last_id:  # the events store was reset: the page must start over
                yield {"event": "reset", "data": json.dumps({"last_id": h.bus.last_id})}
                return
            try:
                async for ev in h.bus.follow(after):
                    yield {"id": str(ev.id), "data": json.dumps(event_json(ev), default=str)}
            except ResyncNeeded:  # fell behind, or the ring lost what it asks for
                yield {"event": "reset", "data": json.dumps({"last_id": h.bus.last_id})}

        return EventSourceResponse(gen(), ping=SSE_PING, headers={"X-Accel-Buffering": "no"})

    async def cancel(request: Request) -> Response:
        running = await h.cancel()
        return JSONResponse({"ok": True, "cancelled": running, "state": h.state})

    async def compact(request: Request) -> Response:
        h.request_compact()
        return JSONResponse({"ok": True, "queued": True, "state": h.state})

    async def send(request: Request) -> Response:
        text = await read_message_body(request)
        answer = await core.request({"cmd": "send", "to": h.name, "body": text})
        return JSONResponse({"ok": True, "ids": answer.get("ids", []), "sender": h.name})

    return [
        Route("/api/state", api_state),
        Route("/events/history", history),
        Route("/events/stream", stream),
        Route("/api/cancel", cancel, methods=["POST"]),
        Route("/api/compact", compact, methods=["POST"]),
        Route("/send", send, methods=["POST"]),
    ]


async def _hive_error(request: Request, exc: Exception) -> Response:
    return error_response(exc)


async def _internal_error(request: Request, exc: Exception) -> Response:
    logger.exception("agent web route failed", exc_info=exc, extra={"action": "web_error"})
    return error_response(exc, 500)


PageRoutes = Callable[["Harness"], list[BaseRoute]]


def build_app(
    h: Harness, page: PageRoutes | None = None, core: PageClient | None = None
) -> Starlette:
    """The harness's web app: the API, plus the page's routes when `page` is given. Its
    connection to the core is `app.state.core`: whoever serves the app closes it."""
    client = core or PageClient(h.opts.socket)
    routes = api_routes(h, client)
    if page is not None:
        routes.extend(page(h))
    app = Starlette(
        routes=routes,
        exception_handlers={
            HiveError: _hive_error,
            HTTPException: http_error_response,
            Exception: _internal_error,
        },
    )
    app.state.core = client
    return app


def installed_page() -> PageRoutes:
    """The page's routes (`hyperhive.agentpage`, imported on this first use: the harness loads
    the page's stack only once the page is asked for)."""
    from hyperhive.agentpage import page_routes

    return page_routes


async def serve_web(h: Harness, path: Path, sock: socket.socket | None = None) -> None:
    """Serve the API and the page on a unix socket until cancelled (`sock`:
    `path` already bound and listening, see `hyperhive.httpserver.serve_unix`)."""
    core = PageClient(h.opts.socket)
    try:
        await serve_unix(build_app(h, installed_page(), core), path, sock)
    finally:
        await core.aclose()
