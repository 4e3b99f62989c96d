"""Running one turn: the process lifecycle with small stand-in CLIs (fast), and the real bundled
`claude` CLI against the scripted model server (`slow`)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hyperhive.errors import Unavailable
from hyperhive.harness.claude import ClaudeTurn, has_session, run_compact
from hyperhive.harness.settings import (
    claude_argv,
    claude_env,
    find_claude_binary,
    mcp_config,
    offline_env,
    settings_json,
)
from hyperhive.harness.stream import OutcomeKind
from hyperhive.harness.streamevents import (
    AssistantText,
    AssistantToolUse,
    CompactBoundary,
    Event,
    PermissionDenied,
    Result,
    StreamLine,
    SystemInit,
    ToolResult,
    Unknown,
    Usage,
)
from hyperhive.sim import Scenario, SimServer
from tests.support.waiting import eventually

DEADLINE = 30.0


# -- helpers --------------------------------------------------------------------------------


def _proc_stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    return raw[raw.rfind(b")") + 2 :].decode().split()


def _alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    fields = _proc_stat(pid)
    return fields is not None and fields[0] != "Z"


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _proc_stat(int(entry))
            if fields is not None and len(fields) > 2 and int(fields[2]) == pgid:
                members.append(int(entry))
    return members


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _procs_matching(needle: str) -> list[int]:
    return [int(e) for e in os.listdir("/proc") if e.isdigit() and needle in _cmdline(int(e))]


async def _until(condition: Callable[[], bool], what: str, timeout: float = DEADLINE) -> None:
    """Poll `condition` with a deadline (for things no event announces, like a process)."""
    await eventually(condition, timeout, what)


async def _assert_gone(turn: ClaudeTurn) -> None:
    """The CLI is reaped (no zombie) and nothing of its process group lives on (SIGKILLed
    members take a moment to die; init reaps them)."""
    pid = turn.pid
    assert pid is not None
    assert turn.returncode is not None
    assert _proc_stat(pid) is None, "the CLI is still there (zombie?)"
    await _until(
        lambda: not [p for p in _group_members(pid) if _alive(p)],
        "nothing of the CLI's process group survives",
    )


def _script(tmp_path: Path, name: str, body: str) -> list[str]:
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(body))
    return [sys.executable, str(path)]


RESULT_LINE = json.dumps(
    {
        "type": "result",
        "subtype": "success",
        "is_error": False,
        "result": "done",
        "session_id": "s1",
        "usage": {"input_tokens": 7, "output_tokens": 3},
    }
)


# -- process lifecycle with stand-in CLIs (fast) --------------------------------------------


async def test_lines_events_and_outcome(tmp_path: Path) -> None:
    argv = _script(
        tmp_path,
        "fake",
        f"""
        import sys
        print('{{"type":"system","subtype":"init","session_id":"s1","model":"m","tools":[]}}')
        print("this is not json")
        sys.stdout.write('{{"type":"assistant","message":{{"content":[')
        sys.stdout.flush()
        print('{{"type":"text","text":"hi"}},{{"type":"tool_use","id":"t","name":"Bash","input":{{}}}}]}}}}')
        print("noise", file=sys.stderr)
        sys.stdout.write({RESULT_LINE!r})  # no final newline
        """,
    )
    async with ClaudeTurn(argv, cwd=tmp_path) as turn:
        lines: list[StreamLine] = [line async for line in turn.lines()]
        outcome, tally = await turn.wait()
    assert [type(e) for line in lines for e in line.events] == [
        SystemInit,
        Unknown,
        AssistantText,
        AssistantToolUse,
        Result,
    ]
    raw, events = lines[0]  # unpacks as (raw, events)
    assert raw["type"] == "system" and isinstance(events[0], SystemInit)
    assert lines[1].raw == {}
    assert outcome.kind is OutcomeKind.OK
    assert tally.tool_calls == {"Bash": 1}
    assert tally.usage == Usage(7, 3)
    assert "noise" in turn.stderr_tail
    assert (await turn.wait())[0] is outcome  # same answer again
    await _assert_gone(turn)


async def test_wait_without_reading_lines(tmp_path: Path) -> None:
    # more output than a pipe buffer holds: the reader must drain it without a consumer
    argv = _script(
        tmp_path,
        "chatty",
        f"""
        import json
        for i in range(3000):
            print(json.dumps({{"type": "system", "subtype": "status", "status": "x" * 100}}))
        print({RESULT_LINE!r})
        """,
    )
    async with ClaudeTurn(argv) as turn:
        outcome, tally = await turn.wait()
    assert outcome.kind is OutcomeKind.OK
    assert tally.result is not None and tally.result.result == "done"


async def test_crash_without_result_is_failed(tmp_path: Path) -> None:
    argv = _script(
        tmp_path, "crash", "import sys; print('error: bad flag', file=sys.stderr); sys.exit(1)"
    )
    async with ClaudeTurn(argv) as turn:
        assert [line async for line in turn.events()] == []
        outcome, _ = await turn.wait()
    assert outcome.kind is OutcomeKind.FAILED
    assert "bad flag" in outcome.note and "code 1" in outcome.note


async def test_missing_binary_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(Unavailable, match="cannot start"):
        async with ClaudeTurn([str(tmp_path / "nope")]):
            pass


STUBBORN = """
    import os, signal, subprocess, sys, time
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # a child in a session of its own, as the real CLI starts its Bash tool shells
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", "MARK-session"],
                     start_new_session=True)
    # a child in the CLI's own process group, as its MCP servers are
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", "MARK-group"])
    print('{"type":"system","subtype":"init","session_id":"s","tools":[]}', flush=True)
    time.sleep(600)
"""


def _stubborn(tmp_path: Path) -> tuple[list[str], str]:
    """The stubborn stand-in CLI, and the marker its children carry: unique to this test (its
    tmp dir), so a suite running beside this one on the machine never counts as ours (two
    runs at once each saw both runs' children and waited for exactly one)."""
    marker = f"hive-stubborn-{tmp_path}"
    return _script(tmp_path, "stubborn", STUBBORN.replace("MARK", marker)), marker


async def test_interrupt_escalates_to_sigkill_and_leaves_nothing(tmp_path: Path) -> None:
    argv, marker = _stubborn(tmp_path)
    async with ClaudeTurn(argv, interrupt_grace=0.2, kill_grace=0.2) as turn:
        events = turn.events()
        assert isinstance(await anext(events), SystemInit)
        await _until(lambda: len(_procs_matching(f"{marker}-session")) == 1, "child started")
        await turn.interrupt()
        assert turn.returncode == -9
        outcome, _ = await turn.wait()
    assert outcome.kind is OutcomeKind.CANCELLED
    assert turn.interrupted
    await _assert_gone(turn)
    await _until(lambda: not _procs_matching(f"{marker}-session"), "session child killed")
    await _until(lambda: not _procs_matching(f"{marker}-group"), "group child killed")


async def test_cancelling_the_waiter_kills_the_cli(tmp_path: Path) -> None:
    argv, marker = _stubborn(tmp_path)
    turn = ClaudeTurn(argv, kill_grace=0.2)
    started = asyncio.Event()

    async def run() -> None:
        async with turn:
            async for event in turn.events():
                if isinstance(event, SystemInit):
                    started.set()
            await turn.wait()

    task = asyncio.create_task(run(), name="turn-under-test")
    await started.wait()
    await _until(lambda: len(_procs_matching(f"{marker}-session")) == 1, "child started")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await _assert_gone(turn)
    await _until(lambda: not _procs_matching(f"{marker}-session"), "session child killed")


async def test_close_is_idempotent_and_stops_a_running_cli(tmp_path: Path) -> None:
    argv = _script(tmp_path, "sleepy", "import time; print('{}', flush=True); time.sleep(600)")
    turn = ClaudeTurn(argv, kill_grace=5)
    await turn.start()
    assert _alive(turn.pid or 0)
    await turn.close()
    await turn.close()
    assert turn.returncode == -15  # SIGTERM was enough
    await _assert_gone(turn)
    with pytest.raises(RuntimeError):
        await turn.start()


async def test_lingering_after_result_is_stopped(tmp_path: Path) -> None:
    argv = _script(
        tmp_path,
        "linger",
        f"""
        import time
        print({RESULT_LINE!r}, flush=True)
        time.sleep(600)  # like a CLI waiting for a background shell
        """,
    )
    async with ClaudeTurn(argv, linger=0.3, kill_grace=5) as turn:
        outcome, _ = await turn.wait()
    assert outcome.kind is OutcomeKind.OK
    assert turn.lingered
    await _assert_gone(turn)


def test_has_session(tmp_path: Path) -> None:
    config = tmp_path / ".claude"
    cwd = tmp_path / "work_dir.x"
    cwd.mkdir()
    assert not has_session(config, cwd)
    project = config / "projects" / str(cwd).replace("/", "-").replace("_", "-").replace(".", "-")
    project.mkdir(parents=True)
    assert not has_session(config, cwd)
    (project / "0f0f.jsonl").write_text("{}\n")
    assert has_session(config, cwd)
    long_cwd = "/" + "d" * 250
    hashed = config / "projects" / ("-" + "d" * 199 + "-abc123")
    hashed.mkdir()
    (hashed / "s.jsonl").write_text("{}\n")
    assert has_session(config, long_cwd)


# -- the real CLI ---------------------------------------------------------------------------


@dataclass
class Agent:
    """One CLI identity: its own HOME, CLAUDE_CONFIG_DIR and cwd under tmp_path."""

    name: str
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
    home = tmp_path / "home"
    a = Agent("alice", home, tmp_path / "work", tmp_path / "run")
    for d in (a.config_dir, a.cwd, a.run):
        d.mkdir(parents=True)
    (a.run / "settings.json").write_text(json.dumps(settings_json("agent")))
    (a.run / "system.md").write_text("You are a test agent.\n")
    return a


def _argv(binary: Path, a: Agent, prompt: str, **kw: Any) -> list[str]:
    kw.setdefault("continue_session", has_session(a.config_dir, a.cwd))
    kw.setdefault("settings_path", a.run / "settings.json")
    return claude_argv(
        binary, prompt=prompt, model="haiku", system_prompt_path=a.run / "system.md", **kw
    )


def _env(a: Agent, url: str) -> dict[str, str]:
    return offline_env(url, home=a.home, config_dir=a.config_dir, inherit=os.environ)


async def _turn(
    binary: Path, a: Agent, url: str, prompt: str, **kw: Any
) -> tuple[ClaudeTurn, list[Event]]:
    async with asyncio.timeout(120):
        async with ClaudeTurn(_argv(binary, a, prompt, **kw), env=_env(a, url), cwd=a.cwd) as t:
            events = [e async for e in t.events()]
            await t.wait()
    await _assert_gone(t)
    return t, events


def _scenario(rules: list[dict[str, Any]]) -> Scenario:
    return Scenario.model_validate({"default": {"text": "ok"}, "rules": rules})


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
async def test_real_unreachable_server_is_failed(claude_bin: Path, agent: Agent) -> None:
    turn, _ = await _turn(claude_bin, agent, f"http://127.0.0.1:{_closed_port()}", "hello")
    outcome, tally = await turn.wait()
    assert outcome.kind is OutcomeKind.FAILED
    assert "connect" in outcome.note.lower() or "refused" in outcome.note.lower()
    assert tally.result is not None and tally.result.is_error


@pytest.mark.slow
async def test_real_without_key_is_failed(claude_bin: Path, agent: Agent) -> None:
    env = claude_env(home=agent.home, config_dir=agent.config_dir, max_retries=0)
    env["ANTHROPIC_BASE_URL"] = f"http://127.0.0.1:{_closed_port()}"
    async with ClaudeTurn(_argv(claude_bin, agent, "hello"), env=env, cwd=agent.cwd) as turn:
        outcome, _ = await turn.wait()
    assert outcome.kind is OutcomeKind.FAILED
    assert "Not logged in" in outcome.note


@pytest.mark.slow
async def test_real_hello_exact_usage(claude_bin: Path, agent: Agent) -> None:
    scenario = _scenario(
        [
            {
                "id": "r1",
                "when_user_contains": "hello",
                "reply": [{"type": "text", "text": "hi there"}],
                "usage": {"input_tokens": 123, "output_tokens": 45},
            }
        ]
    )
    async with SimServer(scenario, port=0) as sim:
        assert not has_session(agent.config_dir, agent.cwd)
        turn, events = await _turn(claude_bin, agent, sim.url_for(agent.name), "hello")
        assert sim.fired("r1") == 1
    outcome, tally = await turn.wait()
    assert outcome.kind is OutcomeKind.OK and outcome.note == ""
    assert AssistantText("hi there") in [
        AssistantText(e.text) for e in events if isinstance(e, AssistantText)
    ]
    assert tally.usage == Usage(input_tokens=123, output_tokens=45)
    assert tally.result is not None and tally.result.result == "hi there"
    assert tally.init is not None and tally.init.version
    # the deny list reaches the CLI: denied tools are not offered to the model
    assert "WebFetch" not in tally.init.tools and "Task" not in tally.init.tools
    assert "Bash" in tally.init.tools
    assert has_session(agent.config_dir, agent.cwd)


@pytest.mark.slow
async def test_real_bash_tool_call_is_counted(claude_bin: Path, agent: Agent) -> None:
    scenario = _scenario(
        [
            {
                "id": "call",
                "when_user_contains": "run it",
                "reply": [
                    {"type": "text", "text": "running"},
                    {
                        "type": "tool_use",
                        "name": "Bash",
                        "input": {"command": "echo hive-$((6*7))"},
                    },
                ],
            },
            {"id": "after", "when_tool_result_for": "Bash", "text": "ran: {tool_result}"},
        ]
    )
    async with SimServer(scenario, port=0) as sim:
        turn, events = await _turn(claude_bin, agent, sim.url_for(agent.name), "run it")
        assert sim.fired("after") == 1
    outcome, tally = await turn.wait()
    assert outcome.kind is OutcomeKind.OK
    assert tally.tool_calls == {"Bash": 1}
    results = [e for e in events if isinstance(e, ToolResult)]
    assert len(results) == 1 and not results[0].is_error
    assert "hive-42" in results[0].content


@pytest.mark.slow
async def test_real_session_continues_across_turns(claude_bin: Path, agent: Agent) -> None:
    async with SimServer(_scenario([]), port=0) as sim:
        first, _ = await _turn(claude_bin, agent, sim.url_for(agent.name), "one")
        assert has_session(agent.config_dir, agent.cwd)
        second, _ = await _turn(claude_bin, agent, sim.url_for(agent.name), "two")
        requests = sim.requests
    assert "--continue" not in first.argv and "--continue" in second.argv
    session = first.tally.session_id
    assert session and second.tally.session_id == session
    # the second request replays the first exchange
    last = requests[-1].body["messages"]
    assert "one" in json.dumps(last) and "two" in json.dumps(last)


@pytest.mark.slow
async def test_real_continue_on_a_fresh_agent_starts_a_session(
    claude_bin: Path, agent: Agent
) -> None:
    async with SimServer(_scenario([]), port=0) as sim:
        turn, _ = await _turn(
            claude_bin, agent, sim.url_for(agent.name), "hi", continue_session=True
        )
    assert (await turn.wait())[0].kind is OutcomeKind.OK


@pytest.mark.slow
async def test_real_prompt_too_long(claude_bin: Path, agent: Agent) -> None:
    scenario = _scenario(
        [
            {
                "id": "big",
                "when_user_contains": "huge",
                "error": {
                    "status": 400,
                    "message": "prompt is too long: 250000 tokens > 200000 maximum",
                },
            }
        ]
    )
    async with SimServer(scenario, port=0) as sim:
        turn, _ = await _turn(claude_bin, agent, sim.url_for(agent.name), "huge input")
    outcome, tally = await turn.wait()
    assert outcome.kind is OutcomeKind.PROMPT_TOO_LONG
    assert outcome.note.lower().startswith("prompt is too long")
    assert tally.result is not None and tally.result.api_error_status == 400


@pytest.mark.slow
async def test_real_rate_limited(claude_bin: Path, agent: Agent) -> None:
    scenario = _scenario(
        [{"id": "429", "when_user_contains": "busy", "error": {"status": 429, "message": "slow"}}]
    )
    async with SimServer(scenario, port=0) as sim:
        turn, _ = await _turn(claude_bin, agent, sim.url_for(agent.name), "busy?")
    assert (await turn.wait())[0].kind is OutcomeKind.RATE_LIMITED


@pytest.mark.slow
async def test_real_interrupt_while_waiting_for_the_model(claude_bin: Path, agent: Agent) -> None:
    scenario = _scenario([{"id": "slow", "when_user_contains": "slow", "delay_ms": 60_000}])
    async with SimServer(scenario, port=0) as sim:
        argv = _argv(claude_bin, agent, "a slow turn")
        env = _env(agent, sim.url_for(agent.name))
        async with ClaudeTurn(argv, env=env, cwd=agent.cwd) as turn:
            await sim.wait_for_request(lambda r: r.rule_id == "slow", timeout=DEADLINE)
            await turn.interrupt()
            events = [e async for e in turn.events()]
            outcome, tally = await turn.wait()
    assert outcome.kind is OutcomeKind.CANCELLED
    assert turn.returncode == 0  # the CLI's own clean exit, no escalation
    # with the prompt in argv 2.1.330 prints an aborted result; fed on stdin it printed none
    assert tally.result is None or tally.result.terminal_reason == "aborted_streaming"
    assert any(isinstance(e, SystemInit) for e in events)
    await _assert_gone(turn)


@pytest.mark.slow
async def test_real_interrupt_during_a_tool(claude_bin: Path, agent: Agent) -> None:
    marker = f"hive-sleep-{os.getpid()}"
    command = f"echo start; exec -a {marker} sleep 300"
    scenario = _scenario(
        [
            {
                "id": "tool",
                "when_user_contains": "work",
                "reply": [{"type": "tool_use", "name": "Bash", "input": {"command": command}}],
            }
        ]
    )
    async with SimServer(scenario, port=0) as sim:
        argv = _argv(claude_bin, agent, "work hard")
        env = _env(agent, sim.url_for(agent.name))
        async with ClaudeTurn(argv, env=env, cwd=agent.cwd) as turn:
            await _until(lambda: bool(_procs_matching(marker)), "the tool's command runs")
            await turn.interrupt()
            outcome, tally = await turn.wait()
    assert outcome.kind is OutcomeKind.CANCELLED
    assert tally.result is not None and tally.result.terminal_reason == "aborted_tools"
    assert tally.tool_calls == {"Bash": 1}
    await _assert_gone(turn)
    await _until(lambda: not _procs_matching(marker), "the tool's command is gone")


@pytest.mark.slow
async def test_real_compact(claude_bin: Path, agent: Agent) -> None:
    async with SimServer(_scenario([]), port=0) as sim:
        url = sim.url_for(agent.name)
        nothing, _ = await run_compact(
            claude_bin, env=_env(agent, url), cwd=agent.cwd, model="haiku"
        )
        assert nothing.kind is OutcomeKind.FAILED  # no conversation yet
        assert "No messages to compact" in nothing.note
        for prompt in ("first", "second"):
            await _turn(claude_bin, agent, url, prompt)
        seen: list[StreamLine] = []
        outcome, tally = await run_compact(
            claude_bin,
            env=_env(agent, url),
            cwd=agent.cwd,
            model="haiku",
            settings_path=agent.run / "settings.json",
            on_line=seen.append,
        )
        assert any(r.kind == "compact" for r in sim.requests)
        after, _ = await _turn(claude_bin, agent, url, "third")
    assert outcome.kind is OutcomeKind.OK, outcome.note
    assert tally.compactions == 1
    boundaries = [e for line in seen for e in line.events if isinstance(e, CompactBoundary)]
    assert boundaries and boundaries[0].trigger == "manual"
    assert tally.result is not None and tally.result.local_command == "compact"
    assert after.tally.session_id == tally.session_id


TINY_MCP = """
    from mcp.server.mcpserver import MCPServer

    server = MCPServer("tiny")

    @server.tool(structured_output=False)
    def ping(text: str = "x") -> str:
        return f"pong {text}"

    @server.tool(structured_output=False)
    def other(text: str = "x") -> str:
        return f"other {text}"

    server.run()
"""


@pytest.mark.slow
async def test_real_mcp_permissions(claude_bin: Path, agent: Agent, tmp_path: Path) -> None:
    tiny = _script(tmp_path, "tiny_mcp", TINY_MCP)
    config, allow, warnings = mcp_config(
        [sys.executable, "-c", "import time; time.sleep(600)"],  # a hyperhive stand-in
        {},
        {
            "tiny": {"command": tiny[0], "args": tiny[1:], "allowed_tools": ["ping"]},
            "hyperhive": {"command": "evil"},
        },
    )
    assert allow == ["mcp__tiny__ping"] and len(warnings) == 1
    del config["mcpServers"]["hyperhive"]  # the stand-in serves no MCP
    (agent.run / "mcp.json").write_text(json.dumps(config))
    (agent.run / "settings.json").write_text(json.dumps(settings_json("agent", allow)))
    scenario = _scenario(
        [
            {
                "id": "both",
                "when_user_contains": "tools",
                "reply": [
                    {"type": "tool_use", "name": "mcp__tiny__ping", "input": {"text": "a"}},
                    {"type": "tool_use", "name": "mcp__tiny__other", "input": {"text": "b"}},
                ],
            },
            {"id": "done", "when_tool_result_for": "mcp__tiny__*", "text": "done"},
        ]
    )
    async with SimServer(scenario, port=0) as sim:
        turn, events = await _turn(
            claude_bin,
            agent,
            sim.url_for(agent.name),
            "use the tools",
            mcp_path=agent.run / "mcp.json",
        )
    outcome, tally = await turn.wait()
    assert outcome.kind is OutcomeKind.OK
    assert tally.init is not None and tally.init.mcp_status("tiny") == "connected"
    assert tally.tool_calls == {"mcp__tiny__ping": 1, "mcp__tiny__other": 1}
    results = {e.content: e.is_error for e in events if isinstance(e, ToolResult)}
    assert results.get("pong a") is False
    denied = [e for e in events if isinstance(e, PermissionDenied)]
    assert [d.tool_name for d in denied] == ["mcp__tiny__other"]
    assert [d.tool_name for d in tally.result.permission_denials] == ["mcp__tiny__other"]  # type: ignore[union-attr]


@pytest.mark.slow
async def test_real_background_shell_lingers_then_is_stopped(
    claude_bin: Path, agent: Agent
) -> None:
    marker = f"hive-bg-{os.getpid()}"
    background = {"command": f"exec -a {marker} sleep 300", "run_in_background": True}
    scenario = _scenario(
        [
            {
                "id": "bg",
                "when_user_contains": "background",
                "reply": [{"type": "tool_use", "name": "Bash", "input": background}],
            },
            {"id": "after", "when_tool_result_for": "Bash", "text": "started it"},
        ]
    )
    async with SimServer(scenario, port=0) as sim:
        argv = _argv(claude_bin, agent, "start a background job")
        env = _env(agent, sim.url_for(agent.name))
        async with ClaudeTurn(argv, env=env, cwd=agent.cwd, linger=1.0) as turn:
            outcome, tally = await turn.wait()
    assert outcome.kind is OutcomeKind.OK
    assert turn.lingered
    assert tally.result is not None and tally.result.result == "started it"
    await _assert_gone(turn)
    await _until(lambda: not _procs_matching(marker), "the background shell is gone")
