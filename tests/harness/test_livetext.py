"""Live text (`harness/livetext.py`) and the `stream_event` lines it reads (`stream.py`)."""

from __future__ import annotations

import json

from hyperhive.harness.livetext import LiveText
from hyperhive.harness.stream import parse_line
from hyperhive.harness.streamevents import Partial


def line(event: dict[str, object]) -> str:
    return json.dumps(
        {
            "type": "stream_event",
            "uuid": "u",
            "session_id": "s",
            "event": event,
            "parent_tool_use_id": None,
        }
    )


def delta(index: int, kind: str, text: str) -> str:
    key = "text" if kind == "text_delta" else "thinking"
    return line({"type": "content_block_delta", "index": index, "delta": {"type": kind, key: text}})


def test_stream_events_parse_into_partials() -> None:
    assert parse_line(line({"type": "message_start", "message": {"id": "msg_1"}})) == [
        Partial("message_start", message_id="msg_1")
    ]
    assert parse_line(delta(1, "text_delta", "Hel")) == [Partial("text", "Hel", 1)]
    assert parse_line(delta(0, "thinking_delta", "hmm")) == [Partial("thinking", "hmm", 0)]
    for other in (
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text"}},
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "input_json_delta", "partial_json": "{"},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "signature_delta", "signature": "x"},
        },
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}},
        {"type": "message_stop"},
        {},
    ):
        assert parse_line(line(other)) == [Partial("other")], other
    assert parse_line('{"type": "stream_event", "event": 3}') == [Partial("other")]


def test_deltas_coalesce_into_the_whole_text_so_far() -> None:
    live = LiveText(interval=1.0)
    assert live.feed(Partial("message_start", message_id="msg_1"), 0.0) == []
    assert live.feed(Partial("thinking", "Let me ", 0), 0.0) == [
        {"block": "msg_1:0", "part": "thinking", "text": "Let me "}
    ]
    assert live.feed(Partial("thinking", "think.", 0), 0.5) == []  # too soon: waits
    assert live.feed(Partial("text", "Hello", 1), 0.6) == [
        {"block": "msg_1:1", "part": "text", "text": "Hello"}
    ]
    assert live.feed(Partial("thinking", "", 0), 1.2) == []  # nothing new
    assert live.feed(Partial("text", ", world", 1), 1.7) == [
        {"block": "msg_1:1", "part": "text", "text": "Hello, world"}
    ]
    assert live.feed(Partial("other"), 9.0) == []
    # the next API message of the turn starts over with its own blocks
    live.feed(Partial("message_start", message_id="msg_2"), 10.0)
    assert live.feed(Partial("text", "Next", 0), 10.0) == [
        {"block": "msg_2:0", "part": "text", "text": "Next"}
    ]
