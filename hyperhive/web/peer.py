"""The peer endpoint: how the other nodes of a hive reach this one (docs/multihost.md).

Routes (every one needs `Authorization: Bearer <hive secret>`, compared in constant time;
anything else answers 401 in the one error shape, whatever the address it listens on):
    POST /peer/rpc             one host verb (the host socket's JSON), run here as the operator
                               would run it on this node's host socket; never forwarded again
    *    /peer/agent/<name>/P  the data routes of an agent's page (`web/proxy.py` FORWARDED:
                               state, events, cancel, compact) for another node's dashboard,
                               forwarded to the harness here

Listens on `[node] peer_listen` (default loopback, any free port); `peer_url` (or the bound
address) goes into this node's heartbeat so the others find it. A feature after `nodes`: it
serves once every verb is registered (`after_start`).
"""

from __future__ import annotations

import hmac
import logging
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from hyperhive.client.peer import FORWARDED_HEADER, PEER_RPC_PATH
from hyperhive.core.feature import BaseFeature
from hyperhive.core.nodeforward import FORWARDED
from hyperhive.core.rpc import Caller
from hyperhive.errors import BadRequest, Forbidden, HiveError, NotFound, NotSupported
from hyperhive.httpapi import error_response, http_error_response
from hyperhive.httpserver import EmbeddedServer
from hyperhive.netio import bind_with_retry
from hyperhive.wire.base import HOST_VERBS, parse_request
from hyperhive.wire.framing import MAX_LINE

if TYPE_CHECKING:
    from hyperhive.core.hive import Hive
    from hyperhive.core.nodes import NodesFeature

logger = logging.getLogger(__name__)


class Unauthorized(Forbidden):
    http_status = 401


class PeerGuard:
    """Every request carries the hive secret, or gets 401 (no route runs)."""

    def __init__(self, app: ASGIApp, secret: str) -> None:
        self.app = app
        self.secret = secret.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = b""
        for k, v in scope.get("headers", []):
            if k == b"authorization" and v.startswith(b"Bearer "):
                given = v[len(b"Bearer ") :]
        if not hmac.compare_digest(given, self.secret):
            resp = error_response(Unauthorized("peer requests need the hive secret"), 401)
            await resp(scope, receive, send)
            return
        await self.app(scope, receive, send)


def build_peer_app(hive: Hive, secret: str) -> ASGIApp:
    async def rpc(request: Request) -> Response:
        raw = await request.body()
        try:
            if len(raw) > MAX_LINE:
                raise BadRequest("request too large")
            req = parse_request(raw, HOST_VERBS)
        except HiveError as exc:
            return error_response(exc)
        if req.may_park() or req.cmd.startswith("subscribe"):
            return error_response(NotSupported(f"{req.cmd} is not forwarded between nodes"))
        token = FORWARDED.set(request.headers.get(FORWARDED_HEADER) or "peer")
        try:
            reply = await hive.host_rpc.dispatch(Caller("operator", "operator"), req)
        finally:
            FORWARDED.reset(token)
        body: dict[str, Any] = reply.body
        status = 200 if body.get("ok") is True else _status(body)
        return JSONResponse(body, status_code=status)

    from hyperhive.web.proxy import FORWARDED as PAGE_PATHS
    from hyperhive.web.proxy import AgentProxy

    proxy = AgentProxy(hive)

    async def agent_page(request: Request) -> Response:
        name = str(request.path_params["name"])
        path = "/" + str(request.path_params["path"])
        try:
            if PAGE_PATHS.get(path) != request.method:
                raise NotFound(f"{request.method} {path} is not part of an agent's page")
            token = FORWARDED.set(request.headers.get(FORWARDED_HEADER) or "peer")
            try:
                return await proxy.forward(proxy.agent(name), path, request)
            finally:
                FORWARDED.reset(token)
        except HiveError as exc:
            return error_response(exc)

    routes = [
        Route(PEER_RPC_PATH, rpc, methods=["POST"]),
        Route("/peer/agent/{name}/{path:path}", agent_page, methods=["GET", "POST"]),
    ]
    app = Starlette(routes=routes, exception_handlers={Exception: http_error_response})
    return PeerGuard(app, secret)


def _status(body: dict[str, Any]) -> int:
    from hyperhive.errors import from_body

    return from_body(body).http_status


class PeerFeature(BaseFeature):
    """Serves the peer endpoint and tells the nodes feature its URL."""

    name = "peer"
    after: tuple[str, ...] = ("nodes",)

    def __init__(self, nodes: NodesFeature, listen: str | None = None) -> None:
        self.nodes = nodes
        self.listen = listen
        self._server: EmbeddedServer | None = None

    async def after_start(self) -> None:
        from hyperhive.web.dashboard.security import split_listen

        cfg = self.hive.config.node
        host, port = split_listen(self.listen or cfg.peer_listen)
        sock = await bind_with_retry(host, port, agent="peer")
        bound = sock.getsockname()[1]
        secret = await self.nodes.store.secret()
        server = EmbeddedServer(build_peer_app(self.hive, secret), sock, f"peer:{bound}")
        if not await server.start():
            raise HiveError(f"the peer endpoint on {host}:{bound} did not start")
        self._server = server
        self.nodes.peer_url = cfg.peer_url or f"http://{_url_host(host)}:{bound}"
        await self.nodes.beat()
        logger.info("peer endpoint at %s", self.nodes.peer_url, extra={"action": "peer_up"})

    async def aclose(self) -> None:
        if self._server is not None:
            await self._server.stop()
            self._server = None


def _url_host(host: str) -> str:
    if host in ("", "0.0.0.0"):
        import socket

        return socket.gethostname()
    return f"[{host}]" if ":" in host else host
