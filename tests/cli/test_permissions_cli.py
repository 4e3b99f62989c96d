"""`hive permissions [--json]` and `hive permissions allow|always|deny ID` against a real
`hive serve`, with the agent's parked `ask_permission` answered by the decision."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from tests.support.daemon import DaemonProcess, hive_cli
from tests.support.waiting import eventually

hive = hive_cli
HIVE = (sys.executable, "-m", "hyperhive.cli")


def ask(d: DaemonProcess, key: str, command: str) -> subprocess.Popen[str]:
    """An agent's parked `ask_permission`, through `hive call --as alice`."""
    body = {
        "tool": "Bash",
        "input": {"command": command, "description": "line one\nline two"},
        "rule": "Bash(git push:*)",
        "reason": "rule",
        "key": key,
        "harness": "run1",
    }
    return subprocess.Popen(
        [*HIVE, "call", "--as", "alice", "ask_permission", json.dumps(body)],
        env={**os.environ, "HIVE_HOME": str(d.paths.home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def listed(d: DaemonProcess, n: int) -> list[dict[str, Any]]:
    def rows() -> tuple[list[dict[str, Any]]] | None:
        out = hive(d, "permissions", "--json")
        assert out.returncode == 0, out.stderr
        got = json.loads(out.stdout)["permissions"]
        return (got,) if len(got) == n else None

    found = await eventually(rows, timeout=60, what=f"{n} pending permission request(s)")
    assert isinstance(found, tuple)
    return list(found[0])


def answer_of(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    body: dict[str, Any] = json.loads(out)
    return body


async def test_list_allow_always_deny(daemon: DaemonProcess) -> None:
    assert hive(daemon, "spawn", "alice").returncode == 0
    assert hive(daemon, "permissions").stdout.strip() == "(no pending tool permission requests)"

    first = ask(daemon, "k1", "git push origin main")
    [row] = await listed(daemon, 1)
    text = hive(daemon, "permissions").stdout
    assert f"#{row['id']} alice asks to use Bash" in text and "matches Bash(git push:*)" in text
    assert "    command: git push origin main" in text
    assert "    description: line one\n      line two" in text and "    why: rule" in text
    done = hive(daemon, "permissions", "allow", str(row["id"]))
    assert done.returncode == 0 and done.stdout.strip() == f"#{row['id']} allowed: alice Bash"
    assert answer_of(first)["behavior"] == "allow"
    again = hive(daemon, "permissions", "deny", str(row["id"]))
    assert again.returncode == 1 and "already allowed" in again.stderr

    second = ask(daemon, "k2", "git push --tags")
    [row] = await listed(daemon, 1)
    kept = hive(daemon, "permissions", "always", str(row["id"]), "--json")
    assert kept.returncode == 0, kept.stderr
    assert json.loads(kept.stdout)["permission"]["kept_rule"] == "Bash(git push --tags)"
    assert answer_of(second)["behavior"] == "allow"
    assert answer_of(ask(daemon, "k3", "git push --tags"))["behavior"] == "allow"  # kept

    third = ask(daemon, "k4", "git push --force")
    [row] = await listed(daemon, 1)
    denied = hive(daemon, "permissions", "deny", str(row["id"]), "--note", "never force")
    assert denied.stdout.strip() == f"#{row['id']} denied: alice Bash — never force"
    got = answer_of(third)
    assert (got["behavior"], got["note"]) == ("deny", "never force")

    missing = hive(daemon, "permissions", "allow", "999")
    assert missing.returncode == 1 and missing.stderr.startswith("error: no permission request")
    assert hive(daemon, "permissions", "allow", "x").returncode == 2  # click's usage error
