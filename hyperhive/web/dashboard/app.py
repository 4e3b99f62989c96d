"""The dashboard as one ASGI app: the page, its JSON API, the event feed, static assets and
(when that module is installed) the agent-page proxy, all behind the `Guard` middleware.

Routes:
    GET  /                       the page (initial state embedded; live afterwards)
    GET  /login?token=T          set the operator-token cookie (only with a token configured)
    GET  /api/openapi.json       the API description
    *    /api/...                see `api.py` (`api_specs`)
    GET  /dashboard/history      `{seq, epoch, events}`
    GET  /dashboard/stream       SSE (`?since=SEQ` / `Last-Event-ID`)
    GET  /static/...             theme.css, dashboard.css, sharedstream.js, dashboard.js
    GET  /favicon.ico            the hive's icon (an SVG)
    GET  /metrics                Prometheus text format (`hyperhive.web.metrics`)

HTML, JS, CSS and JSON answers are gzipped when the browser accepts it; event streams never
are (Starlette's GZipMiddleware leaves `text/event-stream` alone, so frames are not buffered).
    *    /agent/<name>/...       the agent's own page (`hyperhive.web.proxy`)
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp

from hyperhive.agentpage import favicon
from hyperhive.httpapi import error_response, http_error_response
from hyperhive.web import STATIC_DIR, TEMPLATES_DIR
from hyperhive.web.dashboard.api import api_specs
from hyperhive.web.dashboard.assets import StaticAssets
from hyperhive.web.dashboard.firstpaint import agent_rows
from hyperhive.web.dashboard.openapi import openapi_document
from hyperhive.web.dashboard.security import Guard
from hyperhive.web.dashboard.statecache import SharedState
from hyperhive.web.dashboard.stream import stream_routes
from hyperhive.web.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from hyperhive.web.metrics import HiveMetrics

if TYPE_CHECKING:
    from hyperhive.core.hive import Hive

logger = logging.getLogger(__name__)

GZIP_MIN_BYTES = 1024


def script_json(data: Any) -> str:
    """JSON safe to embed in a `<script type="application/json">` element."""
    text = json.dumps(data, ensure_ascii=False, default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _proxy_routes(hive: Hive) -> list[BaseRoute]:
    try:
        from hyperhive.web.proxy import agent_proxy_routes
    except ImportError:
        return []
    return list(agent_proxy_routes(hive))


def build_app(
    hive: Hive,
    *,
    token: str | None,
    loopback_only: bool,
    port: int,
    closing: asyncio.Event | None = None,
) -> ASGIApp:
    """The whole dashboard for `hive`; `closing` ends open event streams on shutdown."""
    closing = closing or asyncio.Event()
    templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
    static = StaticAssets(STATIC_DIR)  # read and gzipped once, served from memory
    versions = static.versions()  # `?v=<hash>` on every link: browsers never run stale JS
    shared = SharedState(hive)  # one /api/state build for every page asking at once
    specs = api_specs(hive, shared)
    openapi = openapi_document(specs)
    feed = stream_routes(hive, closing)
    metrics = HiveMetrics(hive)

    async def metrics_page(request: Request) -> Response:
        return Response(await metrics.render(), media_type=METRICS_CONTENT_TYPE)

    async def page(request: Request) -> Response:
        state = await shared.get()
        return templates.TemplateResponse(
            request,
            "dashboard.html",
            {
                "csrf_token": request.state.csrf_token,
                "csrf_cookie": request.state.csrf_cookie,
                "initial_state": script_json(state),
                "agent_rows": agent_rows(state),  # the table in the first paint
                "v": versions,
                "manager": hive.config.manager.name,
            },
            headers={"Cache-Control": "no-store"},
        )

    async def openapi_json(request: Request) -> Response:
        return JSONResponse(openapi)

    async def server_error(request: Request, exc: Exception) -> Response:
        logger.exception("dashboard request failed", extra={"action": "dashboard_error"})
        return error_response(exc)

    routes: list[BaseRoute] = [
        Route("/", page, methods=["GET"]),
        Route("/api/openapi.json", openapi_json, methods=["GET"]),
        Route("/favicon.ico", favicon, methods=["GET"]),
        Route("/metrics", metrics_page, methods=["GET"]),
        *(spec.route() for spec in specs),
        Route("/dashboard/history", feed["history"], methods=["GET"]),
        Route("/dashboard/stream", feed["stream"], methods=["GET"]),
        Mount("/static", app=static, name="static"),
        *_proxy_routes(hive),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={HTTPException: http_error_response, Exception: server_error},
    )
    # SSE is excluded by content type (an event stream must never wait in a gzip buffer)
    zipped = GZipMiddleware(app, minimum_size=GZIP_MIN_BYTES)
    return Guard(zipped, token=token, loopback_only=loopback_only, port=port)
