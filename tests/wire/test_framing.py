"""The pure JSON-line framing (`hyperhive.wire.framing`) and its re-exports."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hyperhive.wire import agent, base, framing


def test_encode_line_is_one_compact_utf8_line() -> None:
    line = framing.encode_line({"cmd": "send", "to": "bob", "body": "héllo\nworld ✓"})
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert b": " not in line and b", " not in line
    assert "héllo".encode() in line  # UTF-8 as is, not \u escapes
    assert json.loads(line) == {"cmd": "send", "to": "bob", "body": "héllo\nworld ✓"}


def test_decode_line_round_trips_and_refuses_bad_json() -> None:
    body = {"ok": True, "messages": [{"id": 1, "body": "x"}], "remaining": 0}
    assert framing.decode_line(framing.encode_line(body)) == body
    with pytest.raises(ValueError):
        framing.decode_line(b"{not json")


def test_the_pydantic_wire_modules_re_export_the_same_objects() -> None:
    assert base.MAX_LINE is framing.MAX_LINE == 1 << 20
    assert base.encode_line is framing.encode_line
    assert agent.BODY_MAX is framing.BODY_MAX == 256 * 1024


def test_framing_imports_no_pydantic() -> None:
    code = "import sys, hyperhive.wire.framing; print(any(m.startswith('pydantic') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
