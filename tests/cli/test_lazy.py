"""`hive` imports only the invoked command's module (`hyperhive.cli.lazy`), and its help page
still lists every command with the short help the command itself would give."""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

import hyperhive.cli
from hyperhive.cli.lazy import COMMANDS, LazyGroup, load

HEAVY = ("hyperhive.core", "hyperhive.web", "psycopg", "opentelemetry", "prometheus_client")

PROBE = """
import json, sys
from hyperhive.cli.main import cli
try:
    cli(sys.argv[1:], prog_name="hive")
except SystemExit:
    pass
heavy = sys.argv[0].split(",")
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in heavy
                        or any(m == h or m.startswith(h + ".") for h in heavy))))
"""


def _heavy_modules_after(home: Path, *args: str) -> tuple[list[str], str]:
    code = PROBE.replace("sys.argv[0]", repr(",".join(HEAVY)))
    r = subprocess.run(
        [sys.executable, "-c", code, *args],
        env={**os.environ, "HIVE_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = r.stdout.strip().splitlines()
    assert lines, r.stderr
    return json.loads(lines[-1]), "\n".join(lines[:-1])


def test_help_imports_none_of_the_daemon_and_lists_every_command(short_tmp: Path) -> None:
    heavy, out = _heavy_modules_after(short_tmp / "h", "--help")
    assert heavy == []
    listed = [line.split()[0] for line in out.split("Commands:")[1].splitlines() if line.strip()]
    assert listed == sorted(COMMANDS)


@pytest.mark.parametrize(
    "args",
    [("status",), ("send", "alice", "hi"), ("inbox",), ("approvals",), ("search", "x")],
)
def test_client_commands_import_none_of_the_daemon(short_tmp: Path, args: tuple[str, ...]) -> None:
    """No daemon listens here: the command fails, having imported only what a client needs."""
    heavy, _ = _heavy_modules_after(short_tmp / "h", *args)
    assert heavy == []


def test_the_table_names_every_command_of_every_module() -> None:
    defined: dict[str, str] = {}
    for info in pkgutil.iter_modules(hyperhive.cli.__path__):
        if info.name == "__main__":  # runs `hive` when imported
            continue
        module = importlib.import_module(f"hyperhive.cli.{info.name}")
        commands = getattr(module, "COMMANDS", None)
        if not isinstance(commands, list):  # no commands, or the lazy table itself
            continue
        for command in commands:
            assert command.name is not None
            defined[command.name] = info.name
    assert {name: entry.module for name, entry in COMMANDS.items()} == defined


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_tables_short_help_is_the_commands_own(name: str) -> None:
    entry = COMMANDS[name]
    command = load(entry)
    assert command.name == name
    for limit in (20, 45, 60, 80, 200):
        assert entry.short_help_str(limit) == command.get_short_help_str(limit)


def test_the_help_page_is_the_same_lazy_or_loaded() -> None:
    group = LazyGroup(name="hive", lazy=COMMANDS)
    lazy_page = group.get_help(click.Context(group, info_name="hive"))
    for name in COMMANDS:
        group.get_command(click.Context(group), name)
    assert set(group.commands) == set(COMMANDS)
    assert group.get_help(click.Context(group, info_name="hive")) == lazy_page
    assert group.get_command(click.Context(group), "no-such-command") is None
