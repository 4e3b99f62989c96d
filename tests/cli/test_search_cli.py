"""`hive search` against a real `hive serve`: hits with their links, filters, JSON, and bad
input as one `error:` line (exit 1), never a traceback."""

from __future__ import annotations

import json

from tests.support.daemon import DaemonProcess, hive_cli

hive = hive_cli


def test_search_messages_and_questions(daemon: DaemonProcess) -> None:
    assert hive(daemon, "spawn", "alice").returncode == 0
    sent = hive(daemon, "send", "--as", "alice", "manager", "ship the kestrel release")
    assert sent.returncode == 0, sent.stderr
    asked = hive(
        daemon, "call", "--as", "alice", "ask_operator", json.dumps({"question": "kestrel now?"})
    )
    assert asked.returncode == 0, asked.stderr

    out = hive(daemon, "search", "kestrel")
    assert out.returncode == 0, out.stderr
    assert "message  alice: alice → manager  /agent/manager/" in out.stdout
    assert "question alice: question #1 (open)" in out.stdout
    assert "ship the kestrel release" in out.stdout

    got = json.loads(hive(daemon, "search", "kestrel", "--kind", "message", "--json").stdout)
    assert [h["kind"] for h in got["hits"]] == ["message"]
    assert ["kestrel", True] in got["hits"][0]["snippet"]
    assert got["query"] == '"kestrel"'
    agent_only = json.loads(hive(daemon, "search", "kestrel", "--agent", "bob", "--json").stdout)
    assert agent_only["hits"] == []
    recent = json.loads(hive(daemon, "search", "kestrel", "--since", "2h", "--json").stdout)
    assert len(recent["hits"]) == 2
    assert hive(daemon, "search", "nothing-like-this").stdout.strip() == "(no match)"


def test_bad_input_is_one_error_line(daemon: DaemonProcess) -> None:
    for args, needle in [
        (("...",), "nothing to search for"),
        (("x", "--since", "soon"), "bad duration"),
        (("x", "--agent", "../etc"), "error:"),
    ]:
        out = hive(daemon, "search", *args)
        assert out.returncode == 1, (args, out.stdout)
        assert out.stderr.startswith("error:") and needle in out.stderr, out.stderr
        assert "Traceback" not in out.stderr
    odd = hive(daemon, "search", "NEAR(a", 'b:"c')
    assert odd.returncode == 0 and odd.stdout.strip() == "(no match)", odd.stderr
