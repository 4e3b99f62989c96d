"""Reading an HTTP request's body safely: for every JSON route of the dashboard, the agent
page and the harness's own API.

Invariants:
- A body is never held past its cap: a `Content-Length` over it is refused before a byte is
  read, and a chunked body is refused (`TooLarge`, 413) the moment it passes the cap.
- JSON too deeply nested for the parser is a `BadRequest` (400), never a RecursionError (500);
  so is anything else that is not JSON.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from hyperhive.errors import BadRequest, TooLarge
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
