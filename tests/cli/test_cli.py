"""The CLI against a real daemon: output, --json, one-line errors and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.daemon import CLI_TEST_TIMEOUT, DaemonProcess, hive_cli

hive = hive_cli
pytestmark = pytest.mark.timeout(CLI_TEST_TIMEOUT)


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
    rows = json.loads(status.stdout)
    assert {r["name"] for r in rows} == {"alice", "manager"}
    assert all(r["state"] for r in rows)  # one derived state per agent
    assert "STATE" in hive(daemon, "status").stdout
    stats = hive(daemon, "stats", "alice", "--json")  # no turns yet: empty, not an error
    assert stats.returncode == 0 and json.loads(stats.stdout)["recent"] == []


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
        (("stats", "ghost"), 'no agent "ghost"'),
        (("stats", "../x"), "invalid agent name"),
        (("kill", "manager", "--generation", "2"), "manager is generation 1, not 2"),
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


def test_lifecycle_commands_on_an_external_agent_fail_and_say_why(daemon: DaemonProcess) -> None:
    """The daemon's agents run on the external runtime: nothing to restart, stop or kill."""
    assert hive(daemon, "spawn", "alice").returncode == 0
    for args in (("restart", "alice"), ("rebuild", "alice"), ("kill", "alice"), ("stop", "alice")):
        r = hive(daemon, *args)
        assert r.returncode == 1 and "external runtime" in r.stderr, (args, r.stderr)
        assert r.stdout == ""  # no "restarted alice"


@pytest.fixture
def fake_daemon(short_tmp: Path) -> Iterator[DaemonProcess]:
    """A daemon whose agents run on the shipped fake runtime (lifecycle verbs do something)."""
    d = DaemonProcess(short_tmp / "h", config='[defaults]\nruntime = "fake"\n').start()
    try:
        yield d
    finally:
        d.stop()


def test_every_changing_command_speaks_json(fake_daemon: DaemonProcess) -> None:
    steps: list[tuple[tuple[str, ...], dict[str, object]]] = [
        (("spawn", "alice"), {"action": "spawn", "agents": ["alice"]}),
        (("stop", "alice"), {"action": "stop", "agents": ["alice"]}),
        (("start", "alice"), {"action": "start", "agents": ["alice"]}),
        (("restart", "alice"), {"action": "restart", "agents": ["alice"]}),
        (("kill", "alice"), {"action": "kill", "agents": ["alice"]}),
        (("rebuild", "alice"), {"action": "rebuild", "agents": ["alice"]}),
        (("pause", "alice"), {"action": "pause", "agents": ["alice"]}),
        (("unpause", "alice"), {"action": "unpause", "agents": ["alice"]}),
        (("destroy", "alice"), {"action": "destroy", "agents": ["alice"], "purged": False}),
        (("purge", "alice", "--yes"), {"action": "purge", "agents": ["alice"]}),
    ]
    for args, expected in steps:
        r = hive(fake_daemon, *args, "--json")
        assert r.returncode == 0, (args, r.stderr)
        assert json.loads(r.stdout) == {"ok": True, **expected}, args


def test_status_and_tombstones_have_headers(fake_daemon: DaemonProcess) -> None:
    assert hive(fake_daemon, "spawn", "alice").returncode == 0
    lines = hive(fake_daemon, "status").stdout.splitlines()
    assert lines[0].split()[:2] == ["NAME", "KIND"]
    assert [ln.split()[0] for ln in lines[1:]] == ["alice", "manager"]
    assert lines[0].index("KIND") == lines[1].index("agent")  # the columns line up
    assert hive(fake_daemon, "destroy", "alice").returncode == 0
    lines = hive(fake_daemon, "tombstones").stdout.splitlines()
    assert lines[0].split()[0] == "NAME" and "SIZE" in lines[0]
    assert lines[1].split()[0] == "alice"
