"""Socket framing and bad input: every bad line gets one error line and the daemon carries on;
the host socket speaks hyperhive v1 exactly."""

from __future__ import annotations

import asyncio
import json

import pytest

from hyperhive.core.hive import Hive
from hyperhive.wire.base import MAX_LINE


async def _lines(path: str, payload: bytes, n: int) -> list[dict[str, object]]:
    reader, writer = await asyncio.open_unix_connection(path, limit=4 * MAX_LINE)
    writer.write(payload)
    await writer.drain()
    out = [json.loads(await reader.readline()) for _ in range(n)]
    writer.close()
    return out


async def _host(hive: Hive, line: bytes) -> tuple[dict[str, object], bytes]:
    """One v1 exchange; returns the answer and whatever followed it before close."""
    reader, writer = await asyncio.open_unix_connection(
        str(hive.paths.host_sock), limit=4 * MAX_LINE
    )
    writer.write(line)
    await writer.drain()
    first = await reader.readline()
    rest = await reader.read()
    writer.close()
    assert first.endswith(b"\n")
    return json.loads(first), rest


async def test_garbage_huge_and_unknown_lines_get_one_error_each(hive: Hive) -> None:
    payload = (
        b"not json\n"
        b"[1,2]\n"
        b'{"no_cmd": 1}\n'
        b'{"cmd": "explode"}\n'
        b'{"cmd": "recv", "max": 99}\n'
        b'{"cmd": "send", "to": "manager"}\n' + b"x" * (MAX_LINE + 10) + b"\n"
        b'{"cmd": "whoami"}\n'
    )
    answers = await _lines(str(hive.paths.agent_sock("manager")), payload, 8)
    errors = answers[:7]
    assert all(a["ok"] is False and a["code"] == "bad_request" for a in errors)
    assert "not valid JSON" in str(errors[0]["error"])
    assert "JSON object" in str(errors[1]["error"])
    assert '"cmd"' in str(errors[2]["error"])
    assert "unknown verb 'explode'" in str(errors[3]["error"])
    assert "max" in str(errors[4]["error"])
    assert "missing field 'body'" in str(errors[5]["error"])
    assert "over" in str(errors[6]["error"])
    assert answers[7]["ok"] is True and answers[7]["name"] == "manager"


async def test_manager_only_verbs_are_not_spoken_by_agents(hive: Hive) -> None:
    await hive.spawn("alice")
    [a] = await _lines(
        str(hive.paths.agent_sock("alice")), b'{"cmd":"request_spawn","name":"x"}\n', 1
    )
    assert a["ok"] is False and "unknown verb" in str(a["error"])


async def test_host_v1_framing(hive: Hive) -> None:
    await hive.spawn("alice")
    answer, rest = await _host(hive, b'{"cmd":"list"}\n')
    assert answer == {"version": 1, "ok": True, "agents": ["alice", "manager"]}
    assert rest == b""  # one request per connection, then close

    answer, _ = await _host(hive, b'{"cmd":"agent_status"}\n')
    assert answer["version"] == 1 and answer["ok"] is True
    rows = {r["name"]: r for r in answer["agent_statuses"]}  # type: ignore[union-attr]
    alice = rows["alice"]
    for key in ("running", "failed", "needs_update", "needs_login", "paused"):
        assert isinstance(alice[key], bool)
    assert isinstance(alice["pending_reminders"], int)
    assert all(v is not None for v in alice.values())  # optional fields omitted, never null
    assert "status_text" not in alice and "url" not in alice

    answer, _ = await _host(hive, b'{"cmd":"urls"}\n')
    assert answer["ok"] is True and "domain" in answer["urls"]  # type: ignore[operator]

    answer, _ = await _host(hive, b'{"cmd":"set_paused","name":"alice","paused":true}\n')
    assert answer == {"version": 1, "ok": True}
    answer, _ = await _host(hive, b'{"cmd":"set_paused","name":"ghost","paused":true}\n')
    assert answer == {
        "version": 1,
        "ok": False,
        "error": 'agent "ghost" is not managed by this hive',
        "code": "not_found",
    }
    answer, _ = await _host(hive, b'{"cmd":"spawn","name":"../x"}\n')
    assert answer["ok"] is False and answer["code"] == "invalid_name"
    answer, _ = await _host(hive, b"garbage\n")
    assert answer["version"] == 1 and answer["ok"] is False
    answer, _ = await _host(hive, b'{"cmd":"nope"}\n')
    assert answer["ok"] is False and "unknown verb" in str(answer["error"])


@pytest.mark.parametrize("name", ["../x", "A", "", "a" * 64, "a/b", "-.", "operator", "système"])
async def test_bad_names_refused_everywhere(hive: Hive, name: str) -> None:
    answer, _ = await _host(hive, json.dumps({"cmd": "spawn", "name": name}).encode() + b"\n")
    assert answer["ok"] is False, name
    answer, _ = await _host(
        hive, json.dumps({"cmd": "set_paused", "name": name, "paused": True}).encode() + b"\n"
    )
    assert answer["ok"] is False, name
    assert not any(p.name == name for p in hive.paths.agents_dir.iterdir()) if name else True


async def test_subscribe_agent_status_streams_changes(hive: Hive) -> None:
    reader, writer = await asyncio.open_unix_connection(str(hive.paths.host_sock))
    try:  # closed whatever happens: a socket left to the GC fails a later test
        writer.write(b'{"cmd":"subscribe_agent_status"}\n')
        await writer.drain()
        head = json.loads(await reader.readline())
        assert head == {"version": 1, "ok": True}
        await hive.spawn("bob")
        # other agents' rows may come first (the manager's, a node's periodic push on
        # PostgreSQL): read until bob's arrives; the deadline is only a guard against a hang
        async with asyncio.timeout(120):
            while True:
                line = json.loads(await reader.readline())
                assert line["version"] == 1
                if any(r["name"] == "bob" for r in line["agent_statuses"]):
                    break
    finally:
        writer.close()
        await writer.wait_closed()


async def test_daemon_survives_client_abuse(hive: Hive) -> None:
    # half-written line then close, many connects, then a normal request works
    for _ in range(20):
        _r, w = await asyncio.open_unix_connection(str(hive.paths.agent_sock("manager")))
        w.write(b'{"cmd":"se')
        w.close()
    answer, _ = await _host(hive, b'{"cmd":"list"}\n')
    assert answer["ok"] is True


async def test_urls_names_the_bound_dashboard_not_the_configured_one(hive: Hive) -> None:
    """The test hive listens on port 0 (a free port): `urls` must name the port bound."""
    answer, _ = await _host(hive, b'{"cmd":"urls"}\n')
    urls = answer["urls"]
    assert isinstance(urls, dict)
    assert urls["dashboard"] == hive.dashboard_url and urls["domain"] == "127.0.0.1"
    port = int(hive.dashboard_url.rstrip("/").rsplit(":", 1)[1])
    assert port not in (0, 7000)
