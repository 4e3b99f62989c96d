"""HTTP helpers for every JSON route — the dashboard, the agent page and the harness's own API
alike (ground: the core's web side and the sandbox side both import it, neither the other):
reading a request's body safely, the one error shape as a response, Starlette's own errors
(no route, wrong method) translated into it.

Invariants:
- A body is never held past its cap: a `Content-Length` over it is refused before a byte is
  read, and a chunked body is refused (`TooLarge`, 413) the moment it passes the cap.
- JSON too deeply nested for the parser is a `BadRequest` (400), never a RecursionError (500);
  so is anything else that is not JSON.
- Every error answers `error_body` (`{"ok": false, "error", "code"}`); a 405 keeps its `Allow`
  header (RFC 9110 requires it).
"""

from __future__ import annotations

import json
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from hyperhive.errors import BadRequest, HiveError, NotFound, TooLarge, error_body
from hyperhive.wire.framing import BODY_MAX

# bytes of a JSON body that holds a BODY_MAX-character message: `\ud83d\ude00` spells one
# character in 12 bytes, plus room for the other fields
JSON_BYTES_PER_CHAR = 12
SEND_BODY_MAX = JSON_BYTES_PER_CHAR * BODY_MAX + 16 * 1024


async def read_body(request: Request, limit: int) -> bytes:
    """The body of `request`, at most `limit` bytes (else `TooLarge`)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"the body is {int(declared)} bytes; the limit is {limit}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise TooLarge(f"the body is over the limit of {limit} bytes")
    return bytes(body)


def parse_json(raw: bytes | str) -> Any:
    """`raw` as JSON; `BadRequest` for anything the parser refuses, nesting included."""
    try:
        return json.loads(raw)
    except RecursionError:
        raise BadRequest("the body is not valid JSON: nested too deeply") from None
    except ValueError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None


async def read_json(request: Request, limit: int) -> Any:
    """The request's JSON, its body read with `read_body` (an empty body reads as None)."""
    raw = await read_body(request, limit)
    return parse_json(raw) if raw.strip() else None


async def read_message_body(request: Request) -> str:
    """The text of a `{"body": ...}` JSON request (the harness's and the core's `/send`)."""
    body = await read_json(request, SEND_BODY_MAX)
    text = body.get("body") if isinstance(body, dict) else None
    if not isinstance(text, str) or not text.strip():
        raise BadRequest("field 'body' must be a non-empty string")
    if len(text) > BODY_MAX:
        raise BadRequest(f"the message is {len(text)} characters; the limit is {BODY_MAX}")
    return text


def error_response(exc: BaseException, status: int | None = None) -> JSONResponse:
    """The one error shape as an HTTP response (status from the error unless given)."""
    code = status or (exc.http_status if isinstance(exc, HiveError) else 500)
    return JSONResponse(error_body(exc), status_code=code)


def http_error(request: Request, exc: HTTPException) -> HiveError:
    """Starlette's own error (no route, wrong method, ...) as a `HiveError` of its status."""
    where = f"{request.method} {request.url.path}"
    err: HiveError
    if exc.status_code == 404:
        err = NotFound(f"no route {where}")
    elif exc.status_code == 405:
        err = BadRequest(f"{request.method} is not allowed on {request.url.path}")
    else:
        err = BadRequest(f"{where}: {exc.detail}")
    err.http_status = exc.status_code
    return err


async def http_error_response(request: Request, exc: Exception) -> Response:
    """A Starlette exception handler for `HTTPException`: `http_error` in the one shape,
    Starlette's headers (a 405's `Allow`) kept."""
    if not isinstance(exc, HTTPException):
        return error_response(exc)
    err = http_error(request, exc)
    return JSONResponse(error_body(err), status_code=exc.status_code, headers=exc.headers)
