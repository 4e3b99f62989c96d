"""The dashboard's event feed: `/dashboard/history` then `/dashboard/stream` (SSE).

A page fetches history (`{seq, epoch, events}`, optionally `?kind=` filtered), renders it, then opens the stream from that
`seq`; the browser's automatic reconnects send `Last-Event-ID`, which wins over `?since=` (it
is newer). Together they give every event exactly once: `EventHub.follow` subscribes before it
replays and skips what the client already has.

Stream frames: first `hello` (`{epoch, seq}`: a page holding another epoch reloads), then one
`hive` frame per event with `id: <seq>`; `resync` when the client fell behind the hub's ring
(it should fetch history again). Streams end when the dashboard closes (`closing` is set), so
shutdown never waits on an open page.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from sse_starlette.sse import EventSourceResponse
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from hyperhive.core.events import HiveEvent, ResyncNeeded
from hyperhive.errors import BadRequest
from hyperhive.httpapi import error_response
from hyperhive.web.dashboard.api import int_query

if TYPE_CHECKING:
    from hyperhive.core.hive import Hive

HISTORY_DEFAULT = 1000
HISTORY_MAX = 5000
PING_SECONDS = 15
SEND_TIMEOUT = 30  # seconds one frame may wait on a reader before the stream is dropped


def _since(request: Request) -> int:
    raw = request.headers.get("last-event-id") or request.query_params.get("since") or "0"
    if not raw.isdigit() or len(raw) > 18:
        raise BadRequest(f"since / Last-Event-ID must be an event seq (an integer), got {raw!r}")
    return int(raw)


def _frame(ev: HiveEvent) -> dict[str, str]:
    return {
        "id": str(ev.seq),
        "event": "hive",
        "data": json.dumps(ev.to_json(), default=str, ensure_ascii=False),
    }


async def until_closed(
    source: AsyncIterator[HiveEvent], closing: asyncio.Event
) -> AsyncIterator[HiveEvent]:
    """`source`'s items until `closing` is set (then the iteration just ends). `source` is
    closed on the way out, however this ends (a client hanging up cancels us)."""
    stop = asyncio.ensure_future(closing.wait())
    nxt: asyncio.Future[HiveEvent] | None = None
    try:
        while not closing.is_set():
            nxt = asyncio.ensure_future(anext(source))
            await asyncio.wait({nxt, stop}, return_when=asyncio.FIRST_COMPLETED)
            if not nxt.done():
                return
            try:
                ev = nxt.result()
            except StopAsyncIteration:
                return
            nxt = None
            yield ev
    finally:
        stop.cancel()
        if nxt is not None and not nxt.done():
            nxt.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await nxt
        closer = getattr(source, "aclose", None)  # an async generator: unsubscribe now
        if closer is not None:
            await closer()


def stream_routes(
    hive: Hive, closing: asyncio.Event
) -> dict[str, Callable[[Request], Awaitable[Response]]]:
    async def history(request: Request) -> Response:
        """The newest dashboard events after `since` (`{seq, epoch, events}`), only those of
        the given `kind`s if any are named (`?kind=message_sent&kind=...`)."""
        try:
            since = _since(request)
            limit = int_query(request, "limit", HISTORY_DEFAULT, 1, HISTORY_MAX)
        except BadRequest as exc:
            return error_response(exc)
        kinds = set(request.query_params.getlist("kind"))
        seq = hive.hub.last_seq
        events = hive.hub.history(since)
        if kinds:  # the page's message flow only wants message_sent: don't ship the rest
            events = [e for e in events if e.kind in kinds]
        events = events[-limit:]
        return JSONResponse(
            {
                "ok": True,
                "seq": seq,
                "epoch": hive.hub.epoch,
                "events": [e.to_json() for e in events],
            }
        )

    async def stream(request: Request) -> Response:
        """Server-sent events from `since` (or `Last-Event-ID`): no gap, no duplicate."""
        try:
            since = _since(request)
        except BadRequest as exc:
            return error_response(exc)

        async def frames() -> AsyncIterator[dict[str, Any]]:
            yield {
                "event": "hello",
                "data": json.dumps({"epoch": hive.hub.epoch, "seq": hive.hub.last_seq}),
            }
            try:
                async for ev in until_closed(hive.hub.follow(since), closing):
                    yield _frame(ev)
            except ResyncNeeded as exc:
                yield {"event": "resync", "data": json.dumps({"reason": str(exc)})}

        return EventSourceResponse(
            frames(),
            ping=PING_SECONDS,
            send_timeout=SEND_TIMEOUT,  # a reader that takes nothing is dropped
            headers={"Cache-Control": "no-store"},
        )

    return {"history": history, "stream": stream}
