"""Lifecycle commands: start, stop, restart, kill, rebuild, destroy, logs, shell, login,
tombstones, purge."""

from __future__ import annotations

import os
import shutil
import sys
from typing import Any

import click

from hyperhive.cli.common import Column, Ctx, done, emit, json_option, pass_ctx, run, table
from hyperhive.names import validate_name


def _names(names: tuple[str, ...]) -> list[str]:
    return [validate_name(n) for n in names]


@click.command()
@click.argument("names", nargs=-1, required=True)
@json_option
@pass_ctx
def start(ctx: Ctx, names: tuple[str, ...], as_json: bool) -> None:
    """Start agents."""
    run(ctx.host().call("start", scope={"agent_names": _names(names)}))
    done(as_json, "start", names, f"started {', '.join(names)}")


@click.command()
@click.argument("names", nargs=-1, required=True)
@click.option("--now", is_flag=True, help="Do not wait for the running turn to finish.")
@json_option
@pass_ctx
def stop(ctx: Ctx, names: tuple[str, ...], now: bool, as_json: bool) -> None:
    """Stop agents (gracefully: the running turn finishes first)."""
    run(ctx.host().call("stop", scope={"agent_names": _names(names)}, graceful=not now))
    done(as_json, "stop", names, f"stopped {', '.join(names)}")


@click.command()
@click.argument("name")
@click.option(
    "--generation",
    type=click.IntRange(1),
    help="Only if NAME is still this incarnation (see `hive status --json`); else refused.",
)
@json_option
@pass_ctx
def restart(ctx: Ctx, name: str, generation: int | None, as_json: bool) -> None:
    """Restart an agent (same config)."""
    body: dict[str, Any] = {"name": validate_name(name)}
    if generation is not None:
        body["generation"] = generation
    run(ctx.host().call("restart", **body))
    done(as_json, "restart", [name], f"restarted {name}")


@click.command()
@click.argument("name")
@click.option(
    "--generation",
    type=click.IntRange(1),
    help="Only if NAME is still this incarnation (see `hive status --json`); else refused.",
)
@json_option
@pass_ctx
def kill(ctx: Ctx, name: str, generation: int | None, as_json: bool) -> None:
    """Kill an agent at once."""
    body: dict[str, Any] = {"name": validate_name(name)}
    if generation is not None:
        body["generation"] = generation
    run(ctx.host().call("kill", **body))
    done(as_json, "kill", [name], f"killed {name}")


@click.command()
@click.argument("name")
@json_option
@pass_ctx
def rebuild(ctx: Ctx, name: str, as_json: bool) -> None:
    """Re-create an agent's sandbox from its applied config."""
    run(ctx.host().call("rebuild", name=validate_name(name)))
    done(as_json, "rebuild", [name], f"rebuilt {name}")


@click.command()
@click.argument("name")
@click.option(
    "--purge", is_flag=True, help="Also wipe its state, config and credentials (no undo)."
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
@pass_ctx
def destroy(ctx: Ctx, name: str, purge: bool, yes: bool, as_json: bool) -> None:
    """Destroy an agent, keeping its state so the name can be revived (unless --purge)."""
    validate_name(name)
    if purge and not yes:
        click.confirm(
            f"Purge {name}: its notes, config history and credentials are deleted. No undo. Continue?",
            abort=True,
        )
    run(ctx.host().call("destroy", name=name, purge=purge))
    done(
        as_json,
        "destroy",
        [name],
        f"destroyed {name}"
        + (" and purged its state" if purge else " (state kept; revive with a spawn)"),
        purged=purge,
    )


@click.command()
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
@pass_ctx
def purge(ctx: Ctx, name: str, yes: bool, as_json: bool) -> None:
    """Wipe the kept state of a destroyed agent (no undo)."""
    validate_name(name)
    if not yes:
        click.confirm(f"Purge the kept state of {name}? No undo.", abort=True)
    run(ctx.host().call("purge", name=name))
    done(as_json, "purge", [name], f"purged {name}")


TOMBSTONE_COLUMNS: list[Column] = [
    ("NAME", lambda r: str(r["name"])),
    ("SIZE", lambda r: f"{r['size_bytes'] / 1e6:.1f} MB"),
    ("AGE", lambda r: f"{r['age_seconds'] / 3600:.1f} h"),
    ("CREDENTIALS", lambda r: "kept" if r["credentials_kept"] else "-"),
]


@click.command()
@json_option
@pass_ctx
def tombstones(ctx: Ctx, as_json: bool) -> None:
    """List kept state of destroyed agents."""
    answer = run(ctx.host().call("tombstones"))

    emit(answer["tombstones"], as_json, lambda rows: table(TOMBSTONE_COLUMNS, rows, "(none)"))


@click.command()
@click.argument("name")
@click.option("--lines", "-n", default=200, show_default=True, type=click.IntRange(1, 5000))
@click.option(
    "--source", type=click.Choice(["harness", "sandbox"]), default="harness", show_default=True
)
@json_option
@pass_ctx
def logs(ctx: Ctx, name: str, lines: int, source: str, as_json: bool) -> None:
    """Show an agent's captured output."""
    answer = run(ctx.host().call("logs", name=validate_name(name), lines=lines, source=source))
    emit(answer, as_json, lambda a: "\n".join(a["lines"]))


def _exec_inside(ctx: Ctx, name: str, argv: list[str]) -> None:
    answer = run(ctx.host().call("shell_argv", name=validate_name(name), argv=argv))
    cmd = answer["argv"]
    if shutil.which(cmd[0]) is None and not os.path.exists(cmd[0]):
        raise click.ClickException(f"{cmd[0]} not found")
    sys.stdout.flush()
    os.execvpe(cmd[0], cmd, {**os.environ, **answer.get("env", {})})


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("name")
@click.argument("cmd", nargs=-1, type=click.UNPROCESSED)
@pass_ctx
def shell(ctx: Ctx, name: str, cmd: tuple[str, ...]) -> None:
    """A shell (or CMD) inside NAME's sandbox, as the agent, in /state. Exit status passes through."""
    _exec_inside(ctx, name, list(cmd))


@click.command()
@click.argument("name")
@pass_ctx
def login(ctx: Ctx, name: str) -> None:
    """Run Claude's interactive login inside NAME's sandbox, on this terminal."""
    from hyperhive.claudebin import find_claude_binary
    from hyperhive.config import load_config

    configured = load_config(ctx.paths.config_file).defaults.claude_bin
    _exec_inside(ctx, name, [str(find_claude_binary(configured=configured).resolve()), "/login"])


COMMANDS = [start, stop, restart, kill, rebuild, destroy, purge, tombstones, logs, shell, login]
