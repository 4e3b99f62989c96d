"""The CLI against a real daemon: output, --json, one-line errors and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.daemon import DaemonProcess, hive_cli

hive = hive_cli


def test_spawn_send_recv_inbox(daemon: DaemonProcess) -> None:
    assert hive(daemon, "spawn", "alice").returncode == 0
    out = hive(daemon, "list", "--json")
    assert json.loads(out.stdout) == ["alice", "manager"]
    assert hive(daemon, "send", "alice", "hello").returncode == 0
    got = hive(daemon, "recv", "--as", "alice", "--json")
    assert json.loads(got.stdout)["messages"][0]["body"] == "hello"
    assert hive(daemon, "send", "--as", "alice", "operator", "hi op").returncode == 0
    inbox = hive(daemon, "inbox")
    assert "alice → operator: hi op" in inbox.stdout
    status = hive(daemon, "status", "--json")
    assert {r["name"] for r in json.loads(status.stdout)} == {"alice", "manager"}


def test_call_prints_raw_answers(daemon: DaemonProcess) -> None:
    ok = hive(daemon, "call", "--as", "manager", "whoami")
    assert ok.returncode == 0 and json.loads(ok.stdout)["kind"] == "manager"
    bad = hive(daemon, "call", "--as", "manager", "recv", '{"max": 0}')
    assert bad.returncode == 1 and json.loads(bad.stdout)["ok"] is False


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("spawn", "../x"), "invalid agent name"),
        (("send", "ghost", "boo"), 'agent "ghost" is not managed by this hive'),
        (("recv", "--as", "ghost"), "unreachable"),
        (("call", "--as", "manager", "send", "not json"), "FIELDS is not valid JSON"),
    ],
)
def test_errors_are_one_line_and_nonzero(
    daemon: DaemonProcess, args: tuple[str, ...], needle: str
) -> None:
    r = hive(daemon, *args)
    assert r.returncode != 0
    assert needle in r.stderr
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) <= 2


def test_no_daemon_is_a_clear_error(short_tmp: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "hyperhive.cli", "status"],
        env={**os.environ, "HIVE_HOME": str(short_tmp / "none")},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 1 and "no hive daemon is listening" in r.stderr
