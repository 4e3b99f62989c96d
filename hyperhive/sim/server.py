"""The scripted model server: an in-process HTTP server speaking the Anthropic Messages API.

`SimServer` owns a listening socket and a uvicorn server task; it is an async context manager
whose `close` is idempotent. Routes:
- `POST /v1/messages` and `POST /a/<agent>/v1/messages` (the `?beta=true` query is ignored):
  streaming SSE or JSON, decided by `hyperhive.sim.script`.
- `POST .../v1/messages/count_tokens`: an estimate.
- `GET`/`HEAD` on any path: 200 (Claude Code probes `HEAD <base>/api/hello`).
Anything else gets a 404/405 in Anthropic's error shape.

Invariants:
- The agent tag comes from the `/a/<agent>` path prefix, else the `x-hive-agent` header.
- A request never kills the server: a bad body is a 400 `invalid_request_error`, a bug is a
  logged 500 `api_error`.
- Pauses (`delay_ms`, `chunk_delay_ms`) wait on the server's closing event, so `close` ends slow
  answers at once instead of waiting them out.
- Idle keep-alive connections stay open `KEEP_ALIVE_SECONDS` (as a real API's do, far longer
  than uvicorn's 5 s default), so a client reusing one never races its close.
- Signals are not touched here (uvicorn's handlers are disabled); the CLI owns them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import uuid
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Self

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from hyperhive.httpserver import EmbeddedServer
from hyperhive.sim import inbound as inbound_mod
from hyperhive.sim import sse
from hyperhive.sim.journal import Journal, LoggedRequest, Outcome, Predicate
from hyperhive.sim.scenario import Scenario
from hyperhive.sim.script import Decision, Script

logger = logging.getLogger(__name__)

AGENT_HEADER = "x-hive-agent"
SESSION_HEADER = "x-claude-code-session-id"
_CLOSE_TIMEOUT = 10.0
KEEP_ALIVE_SECONDS = 3600
"""How long an idle connection stays open. The CLI (Node's keep-alive agent) reuses a pooled
connection after any idle time; a server that closes idle ones sooner (uvicorn's default is 5 s)
races the CLI's next request on it, which then fails as a connection error and uses up one of
the CLI's retries (seen on main: a warm agent's next turn after ~5 s idle, flaky under load)."""


class SimServer:
    """Serve `scenario` on `host:port` (port 0 picks a free one) while the context is open."""

    def __init__(
        self,
        scenario: Scenario,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        log_limit: int | None = None,
    ) -> None:
        self._script = Script(scenario)
        self._host = host
        self._port = port
        self._journal = Journal(log_limit)
        self._closing = asyncio.Event()
        self._embedded: EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None
        self._sock: socket.socket | None = None
        self._closed = False

    # -- public API -------------------------------------------------------------------------

    @property
    def scenario(self) -> Scenario:
        return self._script.scenario

    @property
    def port(self) -> int:
        if self._sock is None:
            raise RuntimeError("SimServer is not started")
        return int(self._sock.getsockname()[1])

    @property
    def base_url(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}"

    def url_for(self, agent: str) -> str:
        """Base URL whose requests are tagged with `agent` (use as ANTHROPIC_BASE_URL)."""
        return f"{self.base_url}/a/{agent}"

    @property
    def requests(self) -> list[LoggedRequest]:
        """Messages requests received so far, oldest first (a snapshot)."""
        return self._journal.entries

    @property
    def seen(self) -> int:
        """How many Messages requests were ever received (the next request's `seq`)."""
        return self._journal.seen

    def fired(self, rule_id: str) -> int:
        """How often a rule of the current scenario has answered."""
        return self._script.fired(rule_id)

    async def wait_for_request(
        self, predicate: Predicate | None = None, timeout: float = 10.0, *, after: int = 0
    ) -> LoggedRequest:
        """The first logged request with `seq >= after` satisfying `predicate`; waits for it.

        Raises `TimeoutError` after `timeout` seconds. Pass `after=sim.seen` to wait only for
        requests that have not arrived yet.
        """
        return await self._journal.wait_for(predicate, timeout, after)

    def set_scenario(self, scenario: Scenario) -> None:
        """Hot swap: later requests use `scenario`, with fresh `times` counts."""
        self._script = Script(scenario)
        logger.info(
            "scenario replaced (%d rules)", len(scenario.rules), extra={"action": "sim.scenario"}
        )

    # -- lifecycle --------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Bind and serve; a no-op if already serving (so `start` then `async with` works)."""
        if self._closed:
            raise RuntimeError("SimServer is closed; make a new one")
        if self._task is not None:
            return
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        self._sock = socket.create_server((self._host, self._port), family=family)
        self._embedded = EmbeddedServer(
            self._app(),
            self._sock,
            f"hyperhive.sim:{self.port}",
            close_timeout=_CLOSE_TIMEOUT,
            keep_alive=KEEP_ALIVE_SECONDS,
        )
        ok = await self._embedded.start()
        self._task = self._embedded.task
        if not ok:
            await self.close()
            raise RuntimeError("scripted model server failed to start")
        logger.info("listening on %s", self.base_url, extra={"action": "sim.start"})

    async def close(self) -> None:
        """Stop serving; slow answers in flight are cut short. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._closing.set()
        if self._embedded is not None:
            await self._embedded.stop()
        logger.info("stopped", extra={"action": "sim.stop"})

    # -- HTTP -------------------------------------------------------------------------------

    def _app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/messages", self._messages, methods=["POST"]),
                Route("/a/{agent}/v1/messages", self._messages, methods=["POST"]),
                Route("/v1/messages/count_tokens", self._count_tokens, methods=["POST"]),
                Route("/a/{agent}/v1/messages/count_tokens", self._count_tokens, methods=["POST"]),
                Route("/{path:path}", self._probe, methods=["GET", "HEAD"]),
            ],
            exception_handlers={HTTPException: self._http_error},
        )

    async def _probe(self, request: Request) -> Response:
        return JSONResponse({"ok": True, "service": "hyperhive-sim"})

    async def _http_error(self, request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        kind = "not_found_error" if status == 404 else "invalid_request_error"
        return _error(status, kind, f"{request.method} {request.url.path}: {exc}")

    async def _count_tokens(self, request: Request) -> Response:
        body = await request.body()
        return JSONResponse({"input_tokens": max(1, len(body) // 4)})

    async def _messages(self, request: Request) -> Response:
        agent = request.path_params.get("agent") or request.headers.get(AGENT_HEADER)
        try:
            return await self._handle(request, agent)
        except inbound_mod.BadBody as exc:
            logger.warning(
                "bad request from %s: %s",
                agent or "-",
                exc,
                extra={"action": "sim.bad_request", "agent": agent},
            )
            return _error(400, "invalid_request_error", str(exc))
        except Exception as exc:
            logger.exception(
                "internal error answering %s",
                agent or "-",
                extra={"action": "sim.error", "agent": agent},
            )
            return _error(
                500, "api_error", f"hyperhive.sim internal error: {type(exc).__name__}: {exc}"
            )

    async def _handle(self, request: Request, agent: str | None) -> Response:
        raw = await request.body()
        try:
            body = json.loads(raw)
        except ValueError:
            raise inbound_mod.BadBody("request body is not valid JSON") from None
        seen = inbound_mod.parse(body, agent=agent, session_id=request.headers.get(SESSION_HEADER))
        decision = self._script.decide(seen, len(raw))
        entry = LoggedRequest(
            seq=self._journal.next_seq(),
            agent=agent,
            session_id=seen.session_id,
            kind=seen.kind,
            rule_id=decision.rule_id,
            latest_user_text=seen.latest_user_text,
            tool_result_for=seen.tool_result_for,
            stream=seen.stream,
            model=seen.model,
            path=request.url.path,
            status=decision.status,
            tool_results=seen.tool_results,
            reply=decision.message.content if decision.message else (),
            body=body,
        )
        self._journal.add(entry)
        _log_request(entry)
        return await self._answer(decision, entry)

    async def _answer(self, decision: Decision, entry: LoggedRequest) -> Response:
        if decision.delay and not await self._pause(decision.delay):
            self._journal.settle(entry, "aborted")
            return _error(529, "overloaded_error", "hyperhive.sim is shutting down")
        if decision.error is not None:
            self._journal.settle(entry, "complete")
            err = decision.error
            return _error(err.status, err.error_type, err.message, err.retry_after)
        assert decision.message is not None  # a Decision holds an error or a message
        if not entry.stream:
            self._journal.settle(entry, "complete")
            return JSONResponse(sse.message_json(decision.message), headers=_request_id())
        return _LiveStream(
            self._stream(decision.message, decision.chunk_delay, entry),
            media_type="text/event-stream",
            headers=_request_id() | {"cache-control": "no-cache"},
        )

    async def _stream(
        self, message: sse.Message, chunk_delay: float, entry: LoggedRequest
    ) -> AsyncIterator[bytes]:
        outcome: Outcome = "disconnected"  # unless the end is reached or the server closes
        try:
            for name, data in sse.events(message):
                if (
                    name == "content_block_delta"
                    and chunk_delay
                    and not await self._pause(chunk_delay)
                ):
                    outcome = "aborted"
                    return
                yield sse.encode(name, data)
            outcome = "complete"
        finally:
            self._journal.settle(entry, outcome)
            if outcome != "complete":
                logger.info(
                    "#%d stream %s (%s)",
                    entry.seq,
                    outcome,
                    entry.agent or "-",
                    extra={"action": f"sim.{outcome}", "agent": entry.agent},
                )

    async def _pause(self, seconds: float) -> bool:
        """Sleep `seconds` unless the server closes first; True when the full pause elapsed."""
        try:
            async with asyncio.timeout(seconds):
                await self._closing.wait()
        except TimeoutError:
            return True
        return False


class _LiveStream(StreamingResponse):
    """A streaming response that stops at once when the client hangs up.

    Starlette (ASGI spec >= 2.4) only notices a gone client at its next write; a scripted pause
    can be minutes long, and tests that cancel a turn want to see the disconnect when it happens.
    A hang-up is not an error here: it is how a cancelled turn looks.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        streaming = asyncio.create_task(self.stream_response(send), name="hyperhive.sim:stream")
        listening = asyncio.create_task(
            self.listen_for_disconnect(receive), name="hyperhive.sim:hangup"
        )
        try:
            await asyncio.wait({streaming, listening}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (streaming, listening):
                task.cancel()
            await asyncio.gather(streaming, listening, return_exceptions=True)
            closer = getattr(self.body_iterator, "aclose", None)
            if closer is not None:
                await closer()  # settles the journal entry now, not at garbage collection
        error = None if streaming.cancelled() else streaming.exception()
        if error is not None and not isinstance(error, OSError):  # OSError: hung up mid-write
            raise error


def _log_request(entry: LoggedRequest) -> None:
    answered = entry.rule_id or ("builtin" if entry.kind != "main" else "default")
    logger.info(
        "#%d %s %s -> %s (status %d, %s)",
        entry.seq,
        entry.agent or "-",
        entry.kind,
        answered,
        entry.status,
        ", ".join(entry.tool_uses) or "text",
        extra={
            "action": "sim.request",
            "agent": entry.agent,
            "session_id": entry.session_id,
            "rule_id": entry.rule_id,
            "kind": entry.kind,
        },
    )


def _request_id() -> dict[str, str]:
    return {"request-id": f"req_sim_{uuid.uuid4().hex[:24]}"}


def _error(
    status: int, error_type: str, message: str, retry_after: float | None = None
) -> JSONResponse:
    headers = _request_id()
    if retry_after is not None:
        headers["retry-after"] = f"{retry_after:g}"
    return JSONResponse(
        sse.error_json(error_type, message, headers["request-id"]),
        status_code=status,
        headers=headers,
    )
