"""`hive demo`: a whole hive on this machine, offline — the core, the scripted model server and
real Claude Code agents in sandboxes — playing a short scenario while the flow prints live.

Needs no credentials and no network: every agent's CLI talks to `hive sim` through the core's
per-agent model socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import signal
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path
from typing import Any

import click

from hyperhive.config import parse_config
from hyperhive.core.hive import Hive
from hyperhive.paths import HivePaths
from hyperhive.sim import Scenario, SimServer

logger = logging.getLogger(__name__)

ASK = "Please find out how alice is doing and report back to me."
C = {
    "dim": "\x1b[2m",
    "amber": "\x1b[33m",
    "green": "\x1b[32m",
    "mauve": "\x1b[35m",
    "off": "\x1b[0m",
}


def _c(color: str, text: str, tty: bool) -> str:
    return f"{C[color]}{text}{C['off']}" if tty else text


def format_event(kind: str, data: dict[str, Any], tty: bool) -> str | None:
    """One line for the interesting hive events (None: not shown)."""
    if kind == "message_sent":
        who = f"{data['sender']} → {data['to']}"
        body = str(data.get("preview", "")).replace("\n", " ")
        if data.get("kind") == "event":
            return _c("dim", f"  ⚙ {who}: {body[:100]}", tty)
        return f"  ✉ {_c('amber', who, tty)}: {body[:140]}"
    if kind == "transient_set":
        return _c("mauve", f"  ◐ {data['agent']} {data['transient']}…", tty)
    if kind == "agent_state" and data.get("failed"):
        return _c("mauve", f"  ✖ {data['agent']} crashed", tty)
    if kind in ("question_added", "approval_added"):
        return _c("mauve", f"  ? {kind.replace('_', ' ')}: {data}", tty)
    return None


async def _wait_for(pred: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise TimeoutError(f"demo: timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def run_demo(home: Path | None, stay: bool, runtime: str | None, timeout: float) -> int:
    tty = sys.stdout.isatty()
    scratch = home is None
    root = home or Path(tempfile.mkdtemp(dir="/tmp", prefix="hhdemo"))
    paths = HivePaths(root)
    scenario = Scenario.parse(
        resources.files("hyperhive.sim").joinpath("scenarios/demo.toml").read_text("utf-8"),
        fmt="toml",
        source="demo.toml",
    )
    try:
        async with SimServer(scenario) as sim:
            root.mkdir(parents=True, exist_ok=True)
            rt = f'runtime = "{runtime}"\n' if runtime else ""
            paths.config_file.write_text(
                f'[defaults]\n{rt}\n[model_endpoint]\nbase_url = "{sim.base_url}/a/{{agent}}"\n'
                "rate_limit_wait_seconds = 5\n"
            )
            config = parse_config(paths.config_file.read_text(), str(paths.config_file))
            async with Hive(paths, config) as hive:
                dash = getattr(hive, "dashboard_url", None)
                if dash:
                    click.echo(f"dashboard: {dash}")
                click.echo(f"hive home: {root}   model: hive sim at {sim.base_url}")
                done = asyncio.Event()

                async def printer() -> None:
                    async for ev in hive.hub.follow(0):
                        line = format_event(ev.kind, ev.data, tty)
                        if line:
                            click.echo(line)
                        if ev.kind == "message_sent" and ev.data.get("to") == "operator":
                            done.set()

                show = asyncio.create_task(printer(), name="demo-printer")
                try:
                    await hive.spawn("alice")
                    await _wait_for(
                        lambda: hive.connections("manager") > 0 and hive.connections("alice") > 0,
                        60,
                        "the manager's and alice's harnesses to connect",
                    )
                    click.echo(_c("green", f"operator → manager: {ASK}", tty))
                    await hive.broker.send("operator", "manager", ASK)
                    await asyncio.wait_for(done.wait(), timeout)
                    await asyncio.sleep(0.5)  # let the last turn end print
                    click.echo(_c("green", "demo scenario complete.", tty))
                    await _print_stats(hive, tty)
                    if stay:
                        click.echo("the hive keeps running (--stay): Ctrl-C to stop.")
                        stop = asyncio.Event()
                        loop = asyncio.get_running_loop()
                        for sig in (signal.SIGINT, signal.SIGTERM):
                            loop.add_signal_handler(sig, stop.set)
                        await stop.wait()
                finally:
                    show.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await show
                    for name in hive.registry.names():
                        with contextlib.suppress(Exception):
                            await hive.lifecycle.stop_agent(name, graceful=True, timeout=20)
    finally:
        if scratch and not stay:
            shutil.rmtree(root, ignore_errors=True)
    return 0


async def _print_stats(hive: Hive, tty: bool) -> None:
    from hyperhive.harness.stats import read_stats

    for name in hive.registry.names():
        _rows, totals = read_stats(hive.paths.state_dir(name), 50)
        if totals:
            click.echo(
                _c(
                    "dim",
                    f"  {name}: {totals['turns']} turns, {totals['input_tokens']} in / "
                    f"{totals['output_tokens']} out tokens, ${totals['cost_usd']:.4f}, "
                    f"{totals['tool_calls']} tool calls",
                    tty,
                )
            )
