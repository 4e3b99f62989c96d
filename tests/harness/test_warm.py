"""The warm `claude` process and the turn driver, with the real bundled CLI against the
scripted model server: turns on one process, exact usage per turn, interrupt and tool
permissions over the control protocol, crashes mid-turn and between turns, idle expiry."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hyperhive.errors import Unavailable
from hyperhive.harness.claude import has_session
from hyperhive.harness.driver import Launch, TurnDriver
from hyperhive.harness.permgate import Allow, Deny, PermissionAsk, PermissionDecision
from hyperhive.harness.settings import (
    claude_argv,
    find_claude_binary,
    offline_env,
    settings_json,
)
from hyperhive.harness.stream import OutcomeKind
from hyperhive.harness.streamevents import ToolResult, Usage
from hyperhive.harness.warm import WarmClaude
from hyperhive.harness.warmhooks import RefuseUnlisted
from hyperhive.sim import Scenario, SimServer
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow

DEADLINE = 60.0


@dataclass
class Agent:
    home: Path
    cwd: Path
    run: Path

    @property
    def config_dir(self) -> Path:
        return self.home / ".claude"


@pytest.fixture
def claude_bin() -> Path:
    try:
        return find_claude_binary()
    except Unavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture
def agent(tmp_path: Path) -> Agent:
    a = Agent(tmp_path / "home", tmp_path / "work", tmp_path / "run")
    for d in (a.config_dir, a.cwd, a.run):
        d.mkdir(parents=True)
    (a.run / "settings.json").write_text(json.dumps(settings_json("agent")))
    (a.run / "system.md").write_text("You are a test agent.\n")
    return a


def _launch(binary: Path, a: Agent, url: str, settings: dict[str, Any] | None = None) -> Launch:
    if settings is not None:
        (a.run / "settings.json").write_text(json.dumps(settings))
    argv = claude_argv(
        binary,
        prompt=None,
        model="haiku",
        settings_path=a.run / "settings.json",
        system_prompt_path=a.run / "system.md",
        continue_session=has_session(a.config_dir, a.cwd),
    )
    env = offline_env(url, home=a.home, config_dir=a.config_dir, inherit=os.environ)
    return Launch(argv, env, a.cwd)


def _scenario(rules: list[dict[str, Any]]) -> Scenario:
    return Scenario.model_validate({"default": {"text": "ok"}, "rules": rules})


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


class DenyWrite:
    """A test gate: denies `Write`, allows everything else, remembers what it was asked."""

    def __init__(self) -> None:
        self.asked: list[PermissionAsk] = []

    async def decide(self, ask: PermissionAsk) -> PermissionDecision:
        self.asked.append(ask)
        if ask.tool_name == "Write":
            return Deny("the test gate says no")
        return Allow()


async def test_turns_share_one_process_and_report_exact_usage(
    claude_bin: Path, agent: Agent
) -> None:
    scenario = _scenario(
        [
            {
                "id": "one",
                "when_user_contains": "first",
                "text": "A",
                "usage": {"input_tokens": 11, "output_tokens": 2},
            },
            {
                "id": "two",
                "when_user_contains": "second",
                "text": "B",
                "usage": {"input_tokens": 13, "output_tokens": 3},
            },
        ]
    )
    async with SimServer(scenario, port=0) as sim:
        launch = _launch(claude_bin, agent, sim.url_for("alice"))
        async with (
            asyncio.timeout(DEADLINE),
            WarmClaude(launch.argv, env=launch.env, cwd=launch.cwd) as proc,
        ):
            outcomes = []
            for prompt in ("first", "second"):
                turn = await proc.turn(prompt)
                lines = [line async for line in turn.lines()]
                outcome, tally = await turn.wait()
                outcomes.append(
                    (outcome.kind, tally.usage, tally.result.result if tally.result else None)
                )
                assert lines and proc.alive
            pid = proc.pid
        requests = sim.requests
    assert outcomes == [
        (OutcomeKind.OK, Usage(input_tokens=11, output_tokens=2), "A"),
        (OutcomeKind.OK, Usage(input_tokens=13, output_tokens=3), "B"),
    ]
    assert proc.returncode == 0  # closing stdin ends it cleanly
    assert pid is not None and not _alive(pid)
    main = [r for r in requests if r.kind == "main"]
    assert "first" in json.dumps(main[-1].body["messages"])  # one conversation


async def test_interrupt_goes_through_the_control_protocol(claude_bin: Path, agent: Agent) -> None:
    scenario = _scenario(
        [{"id": "slow", "when_user_contains": "slow", "delay_ms": 60_000, "times": 1}]
    )
    async with SimServer(scenario, port=0) as sim:
        launch = _launch(claude_bin, agent, sim.url_for("alice"))
        async with (
            asyncio.timeout(DEADLINE),
            WarmClaude(launch.argv, env=launch.env, cwd=launch.cwd) as proc,
        ):
            turn = await proc.turn("a slow turn")
            await sim.wait_for_request(lambda r: r.rule_id == "slow", timeout=DEADLINE)
            await turn.interrupt()
            outcome, tally = await turn.wait()
            assert proc.alive, "an interrupt is no signal: the process stays"
            again = await proc.turn("after the interrupt")
            ok, _ = await again.wait()
    assert outcome.kind is OutcomeKind.CANCELLED
    assert tally.result is not None and tally.result.terminal_reason == "aborted_streaming"
    assert ok.kind is OutcomeKind.OK


async def test_can_use_tool_asks_the_gate(claude_bin: Path, agent: Agent) -> None:
    scenario = _scenario(
        [
            {
                "id": "tools",
                "when_user_contains": "tools",
                "reply": [
                    {
                        "type": "tool_use",
                        "name": "Bash",
                        "input": {"command": f"touch {agent.cwd}/y; echo gate-$((6*7))"},
                    },
                    {
                        "type": "tool_use",
                        "name": "Write",
                        "input": {"file_path": str(agent.cwd / "x"), "content": "x"},
                    },
                ],
            },
            {"id": "done", "when_tool_result_for": "*", "text": "done"},
        ]
    )
    gate = DenyWrite()
    # nothing allowed by the lists: the CLI asks about both tools
    settings = {"permissions": {"allow": [], "deny": []}}
    async with SimServer(scenario, port=0) as sim:
        launch = _launch(claude_bin, agent, sim.url_for("alice"), settings)
        async with (
            asyncio.timeout(DEADLINE),
            WarmClaude(launch.argv, env=launch.env, cwd=launch.cwd, gate=gate) as proc,
        ):
            turn = await proc.turn("use the tools")
            events = [e async for _raw, evs in turn.lines() for e in evs]
            outcome, _ = await turn.wait()
    assert outcome.kind is OutcomeKind.OK
    assert sorted(a.tool_name for a in gate.asked) == ["Bash", "Write"]
    bash = next(a for a in gate.asked if a.tool_name == "Bash")
    assert bash.tool_input == {"command": f"touch {agent.cwd}/y; echo gate-$((6*7))"}
    assert bash.tool_use_id
    results = [e for e in events if isinstance(e, ToolResult)]
    assert any("gate-42" in r.content and not r.is_error for r in results)
    assert any("the test gate says no" in r.content and r.is_error for r in results)
    assert not (agent.cwd / "x").exists() and (agent.cwd / "y").exists()


async def test_a_crash_mid_turn_fails_the_turn(claude_bin: Path, agent: Agent) -> None:
    scenario = _scenario([{"id": "slow", "when_user_contains": "slow", "delay_ms": 60_000}])
    async with SimServer(scenario, port=0) as sim:
        launch = _launch(claude_bin, agent, sim.url_for("alice"))
        async with (
            asyncio.timeout(DEADLINE),
            WarmClaude(launch.argv, env=launch.env, cwd=launch.cwd) as proc,
        ):
            turn = await proc.turn("a slow turn")
            await sim.wait_for_request(lambda r: r.rule_id == "slow", timeout=DEADLINE)
            assert proc.pid is not None
            os.kill(proc.pid, signal.SIGKILL)
            outcome, _ = await turn.wait()
    assert outcome.kind is OutcomeKind.FAILED
    assert "exited mid-turn" in outcome.note and "signal 9" in outcome.note


async def test_driver_keeps_warm_restarts_after_a_crash_and_expires(
    claude_bin: Path, agent: Agent
) -> None:
    exits: list[tuple[int | None, str]] = []
    async with SimServer(_scenario([]), port=0) as sim:
        url = sim.url_for("alice")
        driver = TurnDriver(
            600, lambda: _launch(claude_bin, agent, url), on_exit=lambda c, w: exits.append((c, w))
        )
        async with asyncio.timeout(DEADLINE * 2), driver:
            pids = []
            for prompt in ("one", "two"):
                async with driver.turn(prompt) as turn:
                    assert (await turn.wait())[0].ok
                pids.append(driver.pid)
            assert pids[0] == pids[1] and driver.starts == 1
            assert pids[0] is not None
            os.kill(pids[0], signal.SIGKILL)  # a crash between turns
            await eventually(lambda: exits, DEADLINE, "the crash is told")
            assert exits == [(-9, "crashed")] and not driver.warm
            async with driver.turn("three") as turn:
                outcome, _ = await turn.wait()
            assert outcome.ok and driver.starts == 2
            # the fresh process continued the same session
            assert "--continue" in driver._proc.argv  # type: ignore[union-attr]
            driver.warm_seconds = 0.01  # the idle timer lets the process go
            async with driver.turn("four") as turn:
                assert (await turn.wait())[0].ok
            await eventually(lambda: not driver.warm and len(exits) == 2, DEADLINE, "idle exit")
        assert exits[1] == (0, "closed")
        main = [r for r in sim.requests if r.kind == "main"]
        assert "one" in json.dumps(main[-1].body["messages"])


async def test_cold_driver_runs_one_process_per_turn(claude_bin: Path, agent: Agent) -> None:
    async with SimServer(_scenario([]), port=0) as sim:
        url = sim.url_for("alice")
        async with (
            asyncio.timeout(DEADLINE * 2),
            TurnDriver(0, lambda: _launch(claude_bin, agent, url)) as driver,
        ):
            for prompt in ("one", "two"):
                async with driver.turn(prompt) as turn:
                    assert (await turn.wait())[0].ok
                assert not driver.warm
            assert driver.starts == 2


async def test_the_harness_default_gate_keeps_the_lists_deciding(
    claude_bin: Path, agent: Agent
) -> None:
    """`RefuseUnlisted`: a tool the allow list does not name is refused, as in `-p` mode."""
    target = agent.cwd / "x"
    scenario = _scenario(
        [
            {
                "id": "write",
                "when_user_contains": "write",
                "reply": [
                    {
                        "type": "tool_use",
                        "name": "Write",
                        "input": {"file_path": str(target), "content": "x"},
                    }
                ],
            },
            {"id": "done", "when_tool_result_for": "Write", "text": "done"},
        ]
    )
    settings = {"permissions": {"allow": ["Read"], "deny": []}}
    async with SimServer(scenario, port=0) as sim:
        launch = _launch(claude_bin, agent, sim.url_for("alice"), settings)
        async with (
            asyncio.timeout(DEADLINE),
            WarmClaude(launch.argv, env=launch.env, cwd=launch.cwd, gate=RefuseUnlisted()) as proc,
        ):
            turn = await proc.turn("write it")
            events = [e async for _raw, evs in turn.lines() for e in evs]
            assert (await turn.wait())[0].ok
    [result] = [e for e in events if isinstance(e, ToolResult)]
    assert result.is_error and "haven't granted it yet" in result.content
    assert not target.exists()


def _procs_matching(needle: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and _alive(int(entry)):
            try:
                if needle.encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                    found.append(int(entry))
            except OSError:
                continue
    return found


async def test_interrupt_during_a_tool_kills_the_tool_and_keeps_the_process(
    claude_bin: Path, agent: Agent
) -> None:
    marker = f"hive-warm-sleep-{os.getpid()}"
    command = f"echo start; exec -a {marker} sleep 300"
    scenario = _scenario(
        [
            {
                "id": "tool",
                "when_user_contains": "work",
                "times": 1,
                "reply": [{"type": "tool_use", "name": "Bash", "input": {"command": command}}],
            }
        ]
    )
    async with SimServer(scenario, port=0) as sim:
        launch = _launch(claude_bin, agent, sim.url_for("alice"))
        async with (
            asyncio.timeout(DEADLINE),
            WarmClaude(launch.argv, env=launch.env, cwd=launch.cwd) as proc,
        ):
            turn = await proc.turn("work hard")
            await eventually(lambda: _procs_matching(marker), DEADLINE, "the tool's command")
            await turn.interrupt()
            outcome, tally = await turn.wait()
            await eventually(lambda: not _procs_matching(marker), DEADLINE, "the tool gone")
            assert proc.alive
            again = await proc.turn("and now?")
            assert (await again.wait())[0].ok
    assert outcome.kind is OutcomeKind.CANCELLED
    assert tally.result is not None and tally.result.terminal_reason == "aborted_tools"
