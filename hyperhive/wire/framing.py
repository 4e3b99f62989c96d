"""The JSON-line framing every socket speaks, and the wire's size limits, as plain Python.

Invariants:
- One message is one JSON object on one line: compact separators, UTF-8 (`ensure_ascii=False`),
  ending in `\\n`, at most `MAX_LINE` bytes.
- Imports nothing but the standard library and orjson: the agent harness (which boots on every spawn and
  idles in every sandbox) frames its requests with this module alone, without the pydantic
  models of `hyperhive.wire.base` / `hyperhive.wire.agent`, which re-export these names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

MAX_LINE = 1 << 20  # 1 MiB: the longest request or answer line
BODY_MAX = 256 * 1024  # characters in one message body (`send`, the pages' `/send`)


def encode_line(obj: Mapping[str, object]) -> bytes:
    """One message as its wire line (the caller checks nothing about its length). orjson:
    the same compact UTF-8 JSON as `json.dumps(separators=(",", ":"), ensure_ascii=False)`,
    ~15x faster (every request and answer of every agent passes here)."""
    return orjson.dumps(obj, option=_OPTIONS)


def decode_line(line: bytes | str) -> Any:
    """Parse one line's JSON (strict: invalid UTF-8 or lone surrogates are errors);
    raises `ValueError`."""
    return orjson.loads(line)


_OPTIONS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS
