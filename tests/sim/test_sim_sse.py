"""Wire format: hyperhive/sim/sse.py (the SDK-level checks live in test_sim_server.py)."""

from __future__ import annotations

import json

import pytest

from hyperhive.sim import sse

MESSAGE = sse.Message(
    id="msg_1",
    model="m",
    content=(
        {"type": "thinking", "thinking": "let me see now, carefully", "signature": "sig"},
        {"type": "text", "text": "Hello there, this is a longer reply.\n"},
        {
            "type": "tool_use",
            "id": "toolu_1",
            "name": "Bash",
            "input": {"command": "echo " + "x" * 60},
        },
    ),
    stop_reason="tool_use",
    usage=sse.Usage(input_tokens=10, output_tokens=20, cache_read_input_tokens=3),
)


def test_event_sequence() -> None:
    names = [name for name, _ in sse.events(MESSAGE)]
    assert names[:2] == ["message_start", "ping"]
    assert names[-2:] == ["message_delta", "message_stop"]
    blocks = names[2:-2]
    assert blocks.count("content_block_start") == blocks.count("content_block_stop") == 3
    assert blocks[0] == "content_block_start"
    assert blocks[-1] == "content_block_stop"


def test_deltas_join_back_to_the_content() -> None:
    joined: dict[int, str] = {}
    signature = ""
    for name, data in sse.events(MESSAGE):
        if name == "content_block_delta":
            delta = data["delta"]
            piece = delta.get("text") or delta.get("thinking") or delta.get("partial_json") or ""
            joined[data["index"]] = joined.get(data["index"], "") + piece
            signature += delta.get("signature", "")
    assert joined[0] == "let me see now, carefully"
    assert joined[1] == "Hello there, this is a longer reply.\n"
    assert json.loads(joined[2]) == MESSAGE.content[2]["input"]
    assert signature == "sig"


def test_usage_in_start_and_delta() -> None:
    events = dict(sse.events(MESSAGE))
    start = events["message_start"]["message"]
    assert start["usage"] == {**MESSAGE.usage.as_dict(), "output_tokens": 1}
    assert start["content"] == [] and start["stop_reason"] is None
    assert events["message_delta"]["usage"] == MESSAGE.usage.as_dict()
    assert events["message_delta"]["delta"]["stop_reason"] == "tool_use"


@pytest.mark.parametrize("value", ["", " ", "one", "  two words  ", "a\n\nb c d e f g"])
def test_text_pieces_are_lossless(value: str) -> None:
    assert "".join(sse.text_pieces(value)) == value


def test_encode_is_one_sse_frame() -> None:
    frame = sse.encode("ping", {"type": "ping"}).decode()
    assert frame == 'event: ping\ndata: {"type":"ping"}\n\n'


def test_error_json_shape() -> None:
    assert sse.error_json("rate_limit_error", "slow", "req_1") == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": "slow"},
        "request_id": "req_1",
    }
