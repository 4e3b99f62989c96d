"""Verb dispatch: typed request in, one answer out, errors in the one error shape.

Invariants: a handler never crashes its caller's connection or the daemon — any exception
becomes an error body (`HiveError` → its code; anything else → `internal`, logged with its
traceback). A handler can ask to be told whether its answer was written (`Reply.on_sent` /
`on_failed`), which is how recv hands its lease to the connection only once the reply left
(and releases it if it could not be written).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from hyperhive.errors import HiveError, NotSupported, error_body
from hyperhive.wire.base import Request, Response, dump_response

if TYPE_CHECKING:
    from hyperhive.core.leases import ConnectionLeases

logger = logging.getLogger(__name__)

CallerKind = Literal["agent", "manager", "operator"]


@dataclass(frozen=True)
class Caller:
    """Who is asking: derived from the socket, never from the request body."""

    name: str
    kind: CallerKind
    # the recv leases of the connection asking (agent sockets); None elsewhere
    leases: ConnectionLeases | None = None


@dataclass
class Reply:
    body: dict[str, Any]
    on_sent: Callable[[], Awaitable[None]] | None = None
    on_failed: Callable[[], None] | None = None
    stream: AsyncIterator[dict[str, Any]] | None = None  # more lines after `body` (subscribe)


Result = Response | Reply | dict[str, Any]
Handler = Callable[[Caller, Any], Awaitable[Result]]
Wrapper = Callable[[Caller, Any, Handler], Awaitable[Result]]


class Dispatcher:
    def __init__(self) -> None:
        self._handlers: dict[type[Request], Handler] = {}

    def handle(self, model: type[Request]) -> Callable[[Handler], Handler]:
        def deco(fn: Handler) -> Handler:
            self._handlers[model] = fn
            return fn

        return deco

    def wrap(self, model: type[Request], fn: Wrapper) -> None:
        """Put `fn(caller, req, inner)` in front of `model`'s handler (`inner` answers as
        before, `NotSupported` when there was none): how the nodes feature forwards a verb
        for an agent on another node."""
        inner = self._handlers.get(model)

        async def missing(caller: Caller, req: Any) -> Result:
            raise NotSupported(f"verb {req.cmd!r} is not supported by this hive yet")

        chosen: Handler = inner if inner is not None else missing

        async def wrapped(caller: Caller, req: Any) -> Result:
            return await fn(caller, req, chosen)

        self._handlers[model] = wrapped

    def has(self, model: type[Request]) -> bool:
        return model in self._handlers

    async def dispatch(self, caller: Caller, req: Request) -> Reply:
        handler = self._handlers.get(type(req))
        try:
            if handler is None:
                raise NotSupported(f"verb {req.cmd!r} is not supported by this hive yet")
            result = await handler(caller, req)
        except HiveError as exc:
            return Reply(error_body(exc))
        except Exception as exc:
            logger.exception(
                "handler for %s failed",
                req.cmd,
                extra={"action": "rpc_error", "agent": caller.name},
            )
            return Reply(error_body(exc))
        if isinstance(result, Reply):
            return result
        return Reply(dump_response(result))
