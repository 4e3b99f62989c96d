"""`hive questions` / `hive answer` / `hive cancel-question` against a real `hive serve`."""

from __future__ import annotations

import json

import pytest

from tests.support.daemon import CLI_TEST_TIMEOUT, DaemonProcess, hive_cli

hive = hive_cli
pytestmark = pytest.mark.timeout(CLI_TEST_TIMEOUT)


def ask(d: DaemonProcess, name: str, **fields: object) -> int:
    out = hive(d, "call", "--as", name, "ask_operator", json.dumps(fields))
    assert out.returncode == 0, (out.stdout, out.stderr)
    body = json.loads(out.stdout)
    assert "id" in body, body
    return int(body["id"])


def test_questions_answer_cancel(daemon: DaemonProcess) -> None:
    assert hive(daemon, "spawn", "alice").returncode == 0
    assert hive(daemon, "questions").stdout.strip() == "(no pending questions)"
    qid = ask(daemon, "alice", question="Which?", options=["red", "green", "blue"], multi=True)
    other = ask(daemon, "alice", question="Proceed?", options=["yes", "no"], ttl_seconds=3600)

    listed = hive(daemon, "questions")
    assert listed.returncode == 0
    assert f"#{qid} from alice" in listed.stdout and "[multi]" in listed.stdout
    assert "    2) green" in listed.stdout and "expires" in listed.stdout
    rows = json.loads(hive(daemon, "questions", "--json").stdout)["questions"]
    assert [r["id"] for r in rows] == [qid, other]

    done = hive(daemon, "answer", str(qid), "--option", "red", "-o", "3", "--text", "both")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"answered #{qid}: red, blue, both"
    again = hive(daemon, "answer", str(qid), "--text", "x")
    assert again.returncode == 1 and again.stderr.startswith("error: question #")
    assert "already resolved" in again.stderr
    bad = hive(daemon, "answer", str(other), "--option", "7")
    assert bad.returncode == 1 and "out of range" in bad.stderr
    two = hive(daemon, "answer", str(other), "-o", "yes", "-o", "no")
    assert two.returncode == 1 and "takes one option" in two.stderr

    cancelled = hive(daemon, "cancel-question", str(other))
    assert cancelled.returncode == 0 and cancelled.stdout.strip() == f"cancelled #{other}"
    noop = hive(daemon, "cancel-question", str(other), "--json")
    assert noop.returncode == 0, (noop.stdout, noop.stderr)
    assert json.loads(noop.stdout)["cancelled"] is False
    assert hive(daemon, "cancel-question", "999").returncode == 1

    recv = hive(daemon, "recv", "--as", "alice", "--max", "8", "--json")
    assert recv.returncode == 0, (recv.stdout, recv.stderr)
    got = json.loads(recv.stdout)
    events = [json.loads(m["body"]) for m in got["messages"] if m["kind"] == "event"]
    answers = [e["answer"] for e in events if e["event"] == "operator_answered"]
    assert answers == ["red, blue, both", "[cancelled]"]
