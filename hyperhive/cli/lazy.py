"""Lazy command loading for `hive`: a command's module is imported only when it is invoked.

Importing every command module costs seconds (the daemon's `serve` pulls in the core, the web
app, the PostgreSQL driver, OpenTelemetry, ...), and every `hive` invocation paid it. Here
the top-level group knows each command by name → (module, attribute, short help) and imports
the module on first use.

Invariants:
- `hive --help` lists every command with its short help without importing any command module:
  the short help is kept in `COMMANDS` (the first sentence of the command's docstring, which is
  all click shows); `tests/cli/test_lazy.py` checks it against the real commands, so a drifting
  docstring fails a test rather than the help page.
- Resolving a name imports exactly one command module.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import click


@dataclass(frozen=True)
class LazyCommand:
    module: str  # under hyperhive.cli
    attr: str
    short_help: str

    def short_help_str(self, limit: int) -> str:
        """What click shows for a command with this help in `limit` columns."""
        return click.Command(None, help=self.short_help).get_short_help_str(limit)


def _table(module: str, *rows: tuple[str, str, str]) -> dict[str, LazyCommand]:
    return {name: LazyCommand(module, attr, short) for name, attr, short in rows}


COMMANDS: Mapping[str, LazyCommand] = {
    **_table(
        "serve",
        (
            "serve",
            "serve",
            "Run the hive core daemon in the foreground (clean shutdown on SIGINT/SIGTERM).",
        ),
    ),
    **_table(
        "demo",
        (
            "demo",
            "demo",
            "Play the demo hive: operator → manager → alice → manager → operator, offline.",
        ),
    ),
    **_table(
        "agents",
        ("spawn", "spawn", "Create agent NAME now (the operator needs no approval)."),
        ("list", "list_", "List agent names."),
        (
            "status",
            "status",
            "Show every agent's status: its one STATE (stopped, starting, idle, "
            "in_turn, waiting_operator, failed, crashed, paused, ...; see docs/operations.md) and "
            "flags.",
        ),
        ("pause", "pause", "Pause NAME: its messages queue, its harness takes no turns."),
        ("unpause", "unpause", "Resume NAME."),
    ),
    **_table(
        "lifecycle",
        ("start", "start", "Start agents."),
        ("stop", "stop", "Stop agents (gracefully: the running turn finishes first)."),
        ("restart", "restart", "Restart an agent (same config)."),
        ("kill", "kill", "Kill an agent at once."),
        ("rebuild", "rebuild", "Re-create an agent's sandbox from its applied config."),
        (
            "destroy",
            "destroy",
            "Destroy an agent, keeping its state so the name can be revived (unless --purge).",
        ),
        ("purge", "purge", "Wipe the kept state of a destroyed agent (no undo)."),
        ("tombstones", "tombstones", "List kept state of destroyed agents."),
        ("logs", "logs", "Show an agent's captured output."),
        ("shell", "shell", "A shell (or CMD) inside NAME's sandbox, as the agent, in /state."),
        (
            "login",
            "login",
            "Run Claude's interactive login inside NAME's sandbox, on this terminal.",
        ),
    ),
    **_table(
        "agent",
        (
            "agent",
            "agent",
            "Run an agent's harness (normally started by the hive inside the agent's sandbox).",
        ),
        ("stats", "stats", "Recent turns of agent NAME and totals (from its turn-stats store)."),
    ),
    **_table(
        "messages",
        ("send", "send", "Send BODY to TO (an agent, `operator` or `*`)."),
        ("inbox", "inbox", "Show the operator's inbox (newest first; * = unread)."),
        (
            "recv",
            "recv",
            "Take unread messages from an agent's inbox, as that agent (acknowledged once shown).",
        ),
        (
            "call",
            "call",
            "Send one VERB request with JSON FIELDS on an agent's socket, exactly "
            "as its harness would, and print the raw answer (ok:false answers are printed too, "
            "exit status 1).",
        ),
    ),
    **_table(
        "questions",
        (
            "questions",
            "questions",
            "List the operator questions waiting for an answer (oldest first).",
        ),
        ("answer", "answer", "Answer question ID; the asker gets the answer in its inbox."),
        (
            "cancel-question",
            "cancel_question",
            "Cancel question ID (the asker gets '[cancelled]'); a resolved one is left as it is.",
        ),
    ),
    **_table(
        "permissions",
        (
            "permissions",
            "permissions",
            "List the tool permission requests waiting for the "
            "operator (oldest first); the subcommands decide one.",
        ),
    ),
    **_table(
        "approvals",
        (
            "approvals",
            "approvals",
            "List approvals waiting for the operator (oldest first); "
            "`show ID` for one and its diff.",
        ),
        ("approve", "approve", "Approve ID; the core acts at once (spawn, seed, apply + rebuild)."),
        ("deny", "deny", "Deny ID; the requester is told."),
        (
            "request-spawn",
            "request_spawn",
            "Queue a spawn of NAME for approval (revives a kept agent's config and credentials).",
        ),
    ),
    **_table(
        "budgets",
        (
            "budgets",
            "budgets",
            "Show each agent's use against its budget limits (rolling hour and day).",
        ),
    ),
    **_table("bench", ("bench", "bench", "Measure the hive (figures go in docs/benchmarks.md).")),
    **_table(
        "db",
        ("db", "db", "Export, import and migrate the hive's data (sqlite ⇄ PostgreSQL)."),
    ),
    **_table(
        "nodes",
        (
            "nodes",
            "nodes",
            "List the hive's nodes: live or lost, last heartbeat, agents, load, free memory.",
        ),
    ),
    **_table(
        "search",
        (
            "search",
            "search",
            "Search the hive's history: messages, questions, approvals, turns (newest first).",
        ),
    ),
    **_table(
        "sim",
        (
            "sim",
            "sim",
            "Serve a scripted model (SCENARIO, a .toml or .json file; env HIVE_SIM_SCENARIO).",
        ),
    ),
}


class LazyGroup(click.Group):
    """A group whose subcommands in `lazy` are imported when first resolved."""

    def __init__(self, *args: Any, lazy: Mapping[str, LazyCommand], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in self.lazy:
            command = load(self.lazy[cmd_name])
            self.add_command(command, cmd_name)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """As click's, but a command not yet imported shows its short help from the table."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(n) for n in names)
        rows = []
        for name in names:
            loaded = self.commands.get(name)
            if loaded is not None:
                if loaded.hidden:
                    continue
                rows.append((name, loaded.get_short_help_str(limit)))
            else:
                rows.append((name, self.lazy[name].short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def load(entry: LazyCommand) -> click.Command:
    module = importlib.import_module(f"hyperhive.cli.{entry.module}")
    command = getattr(module, entry.attr)
    if not isinstance(command, click.Command):
        raise TypeError(f"hyperhive.cli.{entry.module}.{entry.attr} is not a click command")
    return command
