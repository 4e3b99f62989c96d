"""Anthropic Messages API wire format: a finished assistant message as SSE events or as JSON.

Pure: no I/O, no clock, imports nothing of ours, so it can be checked against the official
`anthropic` SDK in isolation.

Invariants (what the real API sends, and what the `claude` CLI and the SDK rely on):
- Event order: `message_start`, `ping`, then per content block `content_block_start`,
  one or more `content_block_delta`, `content_block_stop`; then `message_delta` (stop_reason and
  the final usage) and `message_stop`.
- `message_start` carries the input-side usage and `output_tokens: 1`; `message_delta` carries
  the complete usage, so a client that reads either place gets the scenario's exact figures.
- Text is streamed as `text_delta`s of a few words, tool input as `input_json_delta` pieces
  of the compact JSON, thinking as `thinking_delta`s then one `signature_delta`. Joining the
  pieces gives back exactly the block's content.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

WORDS_PER_DELTA = 3
JSON_CHARS_PER_DELTA = 24

_WORD = re.compile(r"\s*\S+\s*")


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int
    output_tokens: int
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
        }


@dataclass(frozen=True, slots=True)
class Message:
    """A complete assistant message; `content` holds API content blocks (dicts) in final form."""

    id: str
    model: str
    content: tuple[Mapping[str, Any], ...]
    stop_reason: str
    usage: Usage


def message_json(message: Message) -> dict[str, Any]:
    """The non-streaming response body."""
    return {
        "id": message.id,
        "type": "message",
        "role": "assistant",
        "model": message.model,
        "content": [dict(block) for block in message.content],
        "stop_reason": message.stop_reason,
        "stop_sequence": None,
        "usage": message.usage.as_dict(),
    }


def error_json(error_type: str, text: str, request_id: str) -> dict[str, Any]:
    """Anthropic's error body; the SDK maps the HTTP status to its exception class."""
    return {
        "type": "error",
        "error": {"type": error_type, "message": text},
        "request_id": request_id,
    }


def events(message: Message) -> Iterator[tuple[str, dict[str, Any]]]:
    """The SSE events of `message`, as (event name, data) pairs."""
    usage = message.usage
    start = message_json(message) | {"content": [], "stop_reason": None}
    start["usage"] = usage.as_dict() | {"output_tokens": 1}
    yield "message_start", {"type": "message_start", "message": start}
    yield "ping", {"type": "ping"}
    for index, block in enumerate(message.content):
        yield (
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": _opening(block)},
        )
        for delta in _deltas(block):
            yield (
                "content_block_delta",
                {"type": "content_block_delta", "index": index, "delta": delta},
            )
        yield "content_block_stop", {"type": "content_block_stop", "index": index}
    yield (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": message.stop_reason, "stop_sequence": None},
            "usage": usage.as_dict(),
        },
    )
    yield "message_stop", {"type": "message_stop"}


def encode(name: str, data: Mapping[str, Any]) -> bytes:
    """One SSE frame."""
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def text_pieces(text: str) -> list[str]:
    """Split text into deltas of a few words; the pieces join back to `text` exactly."""
    words = _WORD.findall(text)
    if "".join(words) != text:  # leading/trailing-only whitespace: keep it whole
        return [text] if text else []
    return ["".join(words[i : i + WORDS_PER_DELTA]) for i in range(0, len(words), WORDS_PER_DELTA)]


def _opening(block: Mapping[str, Any]) -> dict[str, Any]:
    kind = block["type"]
    if kind == "text":
        return {"type": "text", "text": ""}
    if kind == "thinking":
        return {"type": "thinking", "thinking": "", "signature": ""}
    if kind == "tool_use":
        return {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
    raise ValueError(f"unsupported content block type {kind!r}")


def _deltas(block: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    kind = block["type"]
    if kind == "text":
        for piece in text_pieces(block["text"]):
            yield {"type": "text_delta", "text": piece}
    elif kind == "thinking":
        for piece in text_pieces(block["thinking"]):
            yield {"type": "thinking_delta", "thinking": piece}
        yield {"type": "signature_delta", "signature": block["signature"]}
    elif kind == "tool_use":
        raw = json.dumps(block["input"], separators=(",", ":"))
        for i in range(0, len(raw), JSON_CHARS_PER_DELTA):
            yield {"type": "input_json_delta", "partial_json": raw[i : i + JSON_CHARS_PER_DELTA]}
