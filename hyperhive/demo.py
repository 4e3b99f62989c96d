"""`hive demo`: a whole hive on this machine, offline — the core, the scripted model server and
real Claude Code agents in sandboxes — playing a short scenario while the flow prints live.

The scenario (`sim/scenarios/demo.toml`) gives every dashboard section something to show: a
report relayed to the operator, a question with a deadline (`ask_operator`), a spawn approval
(`request_spawn`), a config change with a diff (the manager edits and commits
`/agents/alice/agent.toml`, then `request_apply_commit`) and a crash (alice's harness dies; the
crash watch tells the manager, who tells the operator). The demo waits for each of these
milestones; with `--stay` the hive and its dashboard keep running so the operator can answer,
approve and restart from the page.

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
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import click

from hyperhive.assembly import throwaway_hive
from hyperhive.config import HiveConfig, parse_config
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
    "red": "\x1b[31m",
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
    if kind == "agent_axes" and data.get("failed"):
        return _c("red", f"  ✖ {data['agent']} crashed", tty)
    if kind == "question_added":
        deadline = f" (deadline {data['deadline_at']})" if data.get("deadline_at") else ""
        opts = " / ".join(data.get("options") or [])
        text = f"  ? {data['agent']} asks the operator: {data['question']}"
        return _c("mauve", text + (f" [{opts}]" if opts else "") + deadline, tty)
    if kind == "question_resolved":
        return _c("mauve", f"  ? question #{data['id']} {data['how']}: {data['answer']}", tty)
    if kind == "approval_added":
        what = f"{data['kind']} {data['agent']}"
        sha = f" @ {str(data['fetched_sha'])[:12]}" if data.get("fetched_sha") else ""
        by = data.get("requested_by") or "?"
        return _c("mauve", f"  ⚑ approval #{data['id']} requested by {by}: {what}{sha}", tty)
    if kind == "approval_resolved":
        note = f" ({data['note']})" if data.get("note") else ""
        return _c("mauve", f"  ⚑ approval #{data['id']} {data['status']}{note}", tty)
    return None


@dataclass
class Milestones:
    """What the scenario must show before the demo calls it complete."""

    need_apply: bool = True
    seen: set[str] = field(default_factory=set)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    WANT = ("report", "question", "spawn", "apply", "crash", "crash_report")

    def missing(self) -> list[str]:
        want = [w for w in self.WANT if w != "apply" or self.need_apply]
        return [w for w in want if w not in self.seen]

    def see(self, kind: str, data: dict[str, Any]) -> None:
        before = len(self.seen)
        if kind == "message_sent" and data.get("to") == "operator":
            preview = str(data.get("preview", ""))
            if "alice reports" in preview:
                self.seen.add("report")
            if "crashed" in preview:
                self.seen.add("crash_report")
        elif kind == "question_added":
            self.seen.add("question")
        elif kind == "approval_added" and data.get("kind") == "spawn":
            self.seen.add("spawn")
        elif kind == "approval_added" and data.get("kind") == "apply_commit":
            self.seen.add("apply")
        elif kind == "agent_axes" and data.get("failed"):
            self.seen.add("crash")
        if len(self.seen) != before:
            self.changed.set()

    async def wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.missing():
            self.changed.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"demo: timed out waiting for: {', '.join(self.missing())}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), left)


async def _wait_for(pred: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise TimeoutError(f"demo: timed out waiting for {what}")
        await asyncio.sleep(0.05)


def load_scenario() -> Scenario:
    return Scenario.parse(
        resources.files("hyperhive.sim").joinpath("scenarios/demo.toml").read_text("utf-8"),
        fmt="toml",
        source="demo.toml",
    )


def _write_config(root: Path, runtime: str | None, base_url: str) -> tuple[HivePaths, HiveConfig]:
    paths = HivePaths(root)
    root.mkdir(parents=True, exist_ok=True)
    rt = f'runtime = "{runtime}"\n' if runtime else ""
    paths.config_file.write_text(
        f'[defaults]\n{rt}\n[model_endpoint]\nbase_url = "{base_url}/a/{{agent}}"\n'
        "rate_limit_wait_seconds = 5\n"
    )
    return paths, parse_config(paths.config_file.read_text(), str(paths.config_file))


@contextlib.asynccontextmanager
async def demo_hive(
    root: Path, runtime: str | None = None
) -> AsyncIterator[tuple[Hive, SimServer]]:
    """The demo's hive in `root`: the scripted model server playing `demo.toml` and a core
    whose agents talk to it. Agents are stopped on the way out (sandboxes outlive the core)."""
    async with SimServer(load_scenario()) as sim:
        paths, config = _write_config(root, runtime, sim.base_url)
        async with throwaway_hive(paths, config) as hive:
            try:
                yield hive, sim
            finally:
                for name in hive.registry.names():
                    with contextlib.suppress(Exception):
                        await hive.lifecycle.stop_agent(name, graceful=True, timeout=20)


async def play(hive: Hive, timeout: float, *, echo: bool = False, tty: bool = False) -> Milestones:
    """Start the scenario (spawn alice, the operator's first message) and wait until every
    milestone was seen; with `echo`, print the flow as it happens."""
    manager = hive.config.manager.name
    # the config change edits /agents/<name>/, which only a sandboxed manager sees
    sandboxed = hive.registry.require(manager).runtime == "bwrap"
    milestones = Milestones(need_apply=sandboxed)
    if echo and not sandboxed:
        click.echo(_c("dim", "  (no sandbox: the config-change step needs bwrap)", tty))

    async def follow() -> None:
        async for ev in hive.hub.follow(0):
            if echo:
                line = format_event(ev.kind, ev.data, tty)
                if line:
                    click.echo(line)
            milestones.see(ev.kind, ev.data)

    watcher = asyncio.create_task(follow(), name="demo-follow")
    try:
        await hive.spawn("alice")
        await _wait_for(
            lambda: hive.connections(manager) > 0 and hive.connections("alice") > 0,
            60,
            "the manager's and alice's harnesses to connect",
        )
        if echo:
            click.echo(_c("green", f"operator → manager: {ASK}", tty))
        await hive.broker.send("operator", manager, ASK)
        await milestones.wait(timeout)
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    return milestones


async def run_demo(home: Path | None, stay: bool, runtime: str | None, timeout: float) -> int:
    tty = sys.stdout.isatty()
    scratch = home is None
    root = home or Path(tempfile.mkdtemp(dir="/tmp", prefix="hhdemo"))
    try:
        async with demo_hive(root, runtime) as (hive, sim):
            dash = hive.dashboard_url or None
            if dash:
                click.echo(f"dashboard: {dash}")
            click.echo(f"hive home: {root}   model: hive sim at {sim.base_url}")
            await play(hive, timeout, echo=True, tty=tty)
            await asyncio.sleep(0.5)  # let the last turn end print
            click.echo(_c("green", "demo scenario complete.", tty))
            await _print_stats(hive, tty)
            if stay:
                await _stay(dash, tty)
    finally:
        if scratch and not stay:
            shutil.rmtree(root, ignore_errors=True)
    return 0


async def _stay(dash: str | None, tty: bool) -> None:
    if dash:
        click.echo(
            _c("green", f"the hive keeps running (--stay): open {dash}", tty)
            + "\n  answer the manager's question, approve or deny the spawn and the config"
            "\n  change (its diff is on the page), restart alice, reply from the inbox."
        )
    click.echo("Ctrl-C to stop.")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


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
