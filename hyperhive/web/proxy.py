"""Each agent's page, served by the core: at `/agent/<name>/` inside the dashboard
(`agent_proxy_routes`) and at the root of the agent's own port (`agent_port_app`, see
`hyperhive.web.agentports`).

What goes where:
- `GET /` and `/static/*`: the core renders the page and serves the assets itself, from its
  own package. The agent's harness runs inside the agent's sandbox next to code the model
  writes; letting it serve HTML or scripts on the dashboard's origin would hand whatever
  runs there the operator's session. So only data crosses: JSON and event streams.
- `GET /api/state`, `/events/history`, `/events/stream`, `POST /api/cancel`, `/api/compact`:
  forwarded to the harness's `web.sock` (`HivePaths.web_sock`) over httpx's unix-socket
  transport; SSE is streamed through as it comes, and a reader who hangs up closes the
  upstream stream at once. Only the headers the API uses are forwarded (never the operator's
  cookies or token); only JSON and `text/event-stream` answers are passed back.
- `POST /send`: not forwarded. The core sends the message itself, as `operator`: that is the
  operator's identity (the harness's own `/send` only injects as the agent itself).

Errors are in the one error shape: a bad name 400, an unknown agent 404, an agent whose page
does not answer 502.
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from hyperhive import safefs
from hyperhive.agentpage import favicon, page_response, render_page, static_app
from hyperhive.errors import HiveError, NotFound, Unavailable
from hyperhive.httpapi import error_response, http_error_response, read_body, read_message_body
from hyperhive.names import validate_name
from hyperhive.paths import WEB_SOCK
from hyperhive.web.dashboard.security import Guard

if TYPE_CHECKING:
    from hyperhive.core.hive import Hive

logger = logging.getLogger(__name__)

# (method, path under the agent's root) forwarded to its harness
FORWARDED = {
    "/api/state": "GET",
    "/events/history": "GET",
    "/events/stream": "GET",
    "/api/cancel": "POST",
    "/api/compact": "POST",
}
REQUEST_HEADERS = ("accept", "content-type", "last-event-id")
PASSED_TYPES = ("application/json", "text/event-stream")
CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 15.0  # JSON answers; event streams have none (the harness pings every 15 s)
MAX_JSON = 16 * 1024 * 1024
FORWARD_BODY_MAX = 64 * 1024  # cancel / compact take no body: room for a small one

NameOf = Callable[[Request], str]
Endpoint = Callable[[Request], Awaitable[Response]]


def _timeout(path: str) -> httpx.Timeout:
    stream = path == "/events/stream"
    return httpx.Timeout(
        READ_TIMEOUT, connect=CONNECT_TIMEOUT, read=None if stream else READ_TIMEOUT
    )


def remote_page(hive: Hive, name: str) -> tuple[str, dict[str, str]] | None:
    """(peer URL, auth headers) of the node that runs `name` when that is not this one (and
    this request did not come from another node), else None."""
    if not hive.runs("nodes"):
        return None
    from hyperhive.client.peer import auth_headers
    from hyperhive.core.nodeforward import FORWARDED
    from hyperhive.core.nodes import NodesFeature

    nodes = hive.feature("nodes")
    assert isinstance(nodes, NodesFeature)
    owner = nodes.owner(name)
    if owner == nodes.node or FORWARDED.get() is not None:
        return None
    url = nodes.peer_url_of(owner)
    if not url or owner in nodes.lost:
        raise PageDown(f"{name} runs on node {owner}, which does not answer")
    return url.rstrip("/"), auth_headers(nodes.secret, nodes.node)


class PageDown(Unavailable):
    """The agent's harness does not answer on its web socket."""

    http_status = 502


class LiveStream(StreamingResponse):
    """A streaming response that stops as soon as the reader hangs up (Starlette on ASGI
    >= 2.4 only notices at its next write, which on a quiet event stream is a ping away),
    then runs `on_close` to release the upstream stream."""

    def __init__(
        self,
        content: AsyncIterator[bytes],
        on_close: Callable[[], Awaitable[None]],
        closing: asyncio.Event,
        **kwargs: object,
    ) -> None:
        super().__init__(content, **kwargs)  # type: ignore[arg-type]
        self._on_close = on_close
        self._closing = closing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        streaming = asyncio.create_task(self.stream_response(send), name="agent-proxy-stream")
        hangup = asyncio.create_task(self.listen_for_disconnect(receive), name="agent-proxy-hangup")
        closing = asyncio.create_task(self._closing.wait(), name="agent-proxy-closing")
        tasks = (streaming, hangup, closing)
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._on_close()
        error = None if streaming.cancelled() else streaming.exception()
        if error is not None and not isinstance(error, OSError | httpx.TransportError):
            raise error


class AgentProxy:
    """The core's side of every agent page (see the module docstring). Setting `closing`
    ends every event stream it serves (a server shutting down need not wait for readers)."""

    def __init__(self, hive: Hive, closing: asyncio.Event | None = None) -> None:
        self.hive = hive
        self.closing = closing or asyncio.Event()

    def agent(self, name: str) -> str:
        validate_name(name)
        if self.hive.registry.get(name) is None:
            raise NotFound(f'agent "{name}" is not managed by this hive')
        return name

    # -- the page ------------------------------------------------------------------------------

    def page_html(self, name: str) -> str:
        rec = self.hive.registry.require(name)
        model = self.hive.agent_configs.model(name)
        state = "connecting" if self.hive.connections(name) > 0 else "offline"
        return render_page(rec.name, rec.kind, model, state)

    # -- the operator's /send --------------------------------------------------------------------

    async def operator_send(self, name: str, request: Request) -> Response:
        text = await read_message_body(request)
        stored = await self.hive.broker.send("operator", name, text)
        logger.info(
            "operator → %s from the agent page",
            name,
            extra={"action": "page_send", "agent": name},
        )
        return JSONResponse({"ok": True, "ids": [m.id for m in stored], "sender": "operator"})

    # -- forwarding ----------------------------------------------------------------------------

    async def forward(self, name: str, path: str, request: Request) -> Response:
        remote = remote_page(self.hive, name)
        if remote is not None:  # another node runs it: ask that node (docs/multihost.md)
            base, headers = remote
            client = httpx.AsyncClient(
                base_url=f"{base}/peer/agent/{name}", timeout=_timeout(path), trust_env=False
            )
            return await self._forward(name, path, request, client, headers)
        # web/ is the agent's: a link it planted there must not send the operator's request to
        # another socket. The socket file is opened O_PATH without following, checked, and
        # connected to through that fd (/proc/self/fd/N), so nothing can swap it in between.
        try:
            pfd = safefs.open_under(self.hive.paths.web_dir(name), WEB_SOCK, os.O_PATH)
        except OSError:
            raise PageDown(f"{name}'s page is down (no socket at its web/{WEB_SOCK})") from None
        try:
            if not stat.S_ISSOCK(os.fstat(pfd).st_mode):
                raise PageDown(f"{name}'s page is down (web/{WEB_SOCK} is not a socket)")
            client = httpx.AsyncClient(
                transport=httpx.AsyncHTTPTransport(uds=f"/proc/self/fd/{pfd}", verify=False),
                base_url="http://agent",
                timeout=_timeout(path),
            )
            return await self._forward(name, path, request, client)
        finally:
            os.close(pfd)

    async def _forward(
        self,
        name: str,
        path: str,
        request: Request,
        client: httpx.AsyncClient,
        extra_headers: dict[str, str] | None = None,
    ) -> Response:
        """Forward through `client` (the harness's socket, or the owning node's peer
        endpoint; connected before this returns, then closed with the answer)."""
        headers = {k: v for k in REQUEST_HEADERS if (v := request.headers.get(k)) is not None}
        headers.update(extra_headers or {})
        upstream = client.build_request(
            request.method,
            path,
            params=request.url.query or None,
            headers=headers,
            content=await read_body(request, FORWARD_BODY_MAX),
        )
        try:
            resp = await client.send(upstream, stream=True)
        except httpx.TransportError as exc:
            await client.aclose()
            raise PageDown(f"{name}'s page is down (its harness does not answer): {exc}") from exc
        ctype = resp.headers.get("content-type", "")
        if not ctype.startswith(PASSED_TYPES):
            await resp.aclose()
            await client.aclose()
            raise PageDown(f"{name}'s page answered {ctype or 'no content type'}, not JSON")

        async def close() -> None:
            await resp.aclose()
            await client.aclose()

        if ctype.startswith("text/event-stream"):
            return LiveStream(
                resp.aiter_raw(),
                close,
                self.closing,
                status_code=resp.status_code,
                media_type="text/event-stream",
                headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
            )
        try:
            body = bytearray()
            async for chunk in resp.aiter_raw():
                body += chunk
                if len(body) > MAX_JSON:
                    raise PageDown(f"{name}'s page answered more than {MAX_JSON} bytes")
        except httpx.TransportError as exc:
            raise PageDown(f"{name}'s page broke off its answer: {exc}") from exc
        finally:
            await close()
        return Response(bytes(body), status_code=resp.status_code, media_type="application/json")

    # -- routes --------------------------------------------------------------------------------

    def routes(self, name_of: NameOf) -> list[BaseRoute]:
        """The page's routes relative to its root; `name_of(request)` names the agent."""

        def endpoint(fn: Callable[[str, Request], Awaitable[Response]]) -> Endpoint:
            async def run(request: Request) -> Response:
                try:
                    return await fn(self.agent(name_of(request)), request)
                except HiveError as exc:
                    return error_response(exc)

            return run

        async def page(name: str, request: Request) -> Response:
            return page_response(self.page_html(name))

        def forwarder(path: str) -> Endpoint:
            async def fwd(name: str, request: Request) -> Response:
                return await self.forward(name, path, request)

            return endpoint(fwd)

        routes: list[BaseRoute] = [
            Route("/", endpoint(page), methods=["GET"]),
            Route("/send", endpoint(self.operator_send), methods=["POST"]),
            Mount("/static", app=static_app()),
        ]
        routes += [Route(p, forwarder(p), methods=[m]) for p, m in FORWARDED.items()]
        return routes


def agent_proxy_routes(hive: Hive, closing: asyncio.Event | None = None) -> list[BaseRoute]:
    """`/agent/<name>/...` for the dashboard app (`/agent/<name>` redirects to the slash);
    `closing`, when given, ends the event streams on shutdown."""
    proxy = AgentProxy(hive, closing)

    async def add_slash(request: Request) -> Response:
        name = request.path_params["name"]
        try:
            validate_name(name)
        except HiveError as exc:
            return error_response(exc)
        return RedirectResponse(f"/agent/{name}/", status_code=308)

    return [
        Route("/agent/{name}", add_slash),
        Mount("/agent/{name}", routes=proxy.routes(lambda r: str(r.path_params["name"]))),
    ]


def agent_port_app(
    hive: Hive,
    name: str,
    port: int,
    closing: asyncio.Event | None = None,
    *,
    token: str | None = None,
) -> ASGIApp:
    """One agent's page at the root of its own port, behind the dashboard's `Guard` with the
    dashboard's rules: the operator `token` when one is configured (`/login?token=` works here
    too), else a loopback `Host` only; a CSRF token on state-changing requests; cookies named
    by `port`."""

    app = Starlette(
        routes=[
            Route("/favicon.ico", favicon, methods=["GET"]),
            *AgentProxy(hive, closing).routes(lambda request: name),
        ],
        exception_handlers={HTTPException: http_error_response},
    )
    # HTML/JS/JSON gzipped; the event stream is not (excluded by its content type)
    return Guard(GZipMiddleware(app, minimum_size=1024), token=token, loopback_only=True, port=port)
