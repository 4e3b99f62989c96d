"""End to end: the real bundled `claude` CLI (2.1.330) against a SimServer, fully offline."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from hyperhive.sim import Scenario, SimServer
from tests.support.claude_run import RunClaude, offline_env

pytestmark = pytest.mark.slow

USAGE = {
    "input_tokens": 1234,
    "output_tokens": 56,
    "cache_read_input_tokens": 78,
    "cache_creation_input_tokens": 9,
}


async def test_text_reply_and_exact_usage(run_claude: RunClaude) -> None:
    scenario = Scenario.model_validate(
        {
            "rules": [
                {
                    "id": "greet",
                    "agent": "alice",
                    "when_user_contains": "hello",
                    "usage": USAGE,
                    "reply": [
                        {"type": "thinking", "thinking": "A greeting."},
                        {"type": "text", "text": "Hello from the sim, {agent}."},
                    ],
                }
            ]
        }
    )
    async with SimServer(scenario) as sim:
        run = await run_claude(sim, "alice", "--", "hello there")
    assert run.returncode == 0, run.stderr
    result = run.result
    assert (result["subtype"], result["is_error"]) == ("success", False)
    assert result["result"] == "Hello from the sim, alice."
    assert {key: result["usage"][key] for key in USAGE} == USAGE
    [logged] = sim.requests
    assert (logged.agent, logged.kind, logged.rule_id, logged.stream) == (
        "alice",
        "main",
        "greet",
        True,
    )
    assert logged.latest_user_text == "hello there"  # the CLI's <system-reminder> blocks are gone
    assert logged.session_id == run.session_id
    assert logged.path == "/a/alice/v1/messages"


async def test_bash_tool_round_trip(run_claude: RunClaude) -> None:
    scenario = Scenario.model_validate(
        {
            "rules": [
                {
                    "id": "call-bash",
                    "when_user_contains": "run it",
                    "reply": [
                        {"type": "text", "text": "Running."},
                        {
                            "type": "tool_use",
                            "name": "Bash",
                            "input": {
                                "command": "echo marker-$((6*7))-{agent}",
                                "description": "echo",
                            },
                        },
                    ],
                },
                {
                    "id": "bash-done",
                    "when_tool_result_for": "Bash",
                    "when_tool_result_contains": "marker-42-bob",
                    "text": "Bash said {tool_result}",
                },
            ]
        }
    )
    async with SimServer(scenario) as sim:
        run = await run_claude(sim, "bob", "--allowedTools", "Bash", "--", "please run it")
    assert run.returncode == 0, run.stderr
    assert run.result["result"] == "Bash said marker-42-bob"
    assert run.result["num_turns"] == 2
    assert [r.rule_id for r in sim.requests] == ["call-bash", "bash-done"]
    second = sim.requests[1]
    assert second.tool_result_for == "Bash"
    assert [(t.name, t.text, t.is_error) for t in second.tool_results] == [
        ("Bash", "marker-42-bob", False)
    ]


async def test_compact_then_continue(run_claude: RunClaude) -> None:
    scenario = Scenario.model_validate(
        {
            "default": {"text": "noted"},
            "rules": [{"id": "after", "when_user_contains": "after", "text": "resumed"}],
        }
    )
    async with SimServer(scenario) as sim:
        first = await run_claude(sim, "carol", "--", "remember the plan")
        compact = await run_claude(sim, "carol", "--continue", "--", "/compact")
        after = await run_claude(sim, "carol", "--continue", "--", "after compaction")
    for run in (first, compact, after):
        assert run.returncode == 0, run.stderr
    assert compact.of("system", "compact_boundary")[0]["compact_metadata"]["trigger"] == "manual"
    assert after.result["result"] == "resumed"
    kinds = [(r.kind, r.rule_id) for r in sim.requests]
    # one compaction request: the built-in answer has the <summary> the CLI insists on
    assert kinds == [("main", None), ("compact", None), ("main", "after")]
    summary = sim.requests[1].reply_text
    assert "<summary>" in summary and "remember the plan" in summary
    # after compaction the CLI merges summary + prompt into one message; only the prompt is "said"
    assert sim.requests[2].latest_user_text == "after compaction"
    assert len({r.session_id for r in sim.requests}) == 1


async def test_prompt_too_long_mid_turn_auto_compacts(run_claude: RunClaude) -> None:
    scenario = Scenario.model_validate(
        {
            "rules": [
                {
                    "id": "call-bash",
                    "when_user_contains": "go",
                    "reply": [
                        {"type": "tool_use", "name": "Bash", "input": {"command": "echo hi"}}
                    ],
                },
                {
                    "id": "too-long",
                    "when_tool_result_for": "Bash",
                    "times": 1,
                    "error": {
                        "status": 400,
                        "message": "prompt is too long: 250000 tokens > 200000 maximum",
                    },
                },
                {"id": "summary", "when_compact": True, "text": "<summary>Ran echo.</summary>"},
            ],
            "default": {"text": "carried on"},
        }
    )
    async with SimServer(scenario) as sim:
        run = await run_claude(sim, "dave", "--allowedTools", "Bash", "--", "go")
    assert run.returncode == 0, run.stderr
    assert run.result["result"] == "carried on"
    assert run.of("system", "compact_boundary")[0]["compact_metadata"]["trigger"] == "auto"
    assert [(r.kind, r.rule_id, r.status) for r in sim.requests] == [
        ("main", "call-bash", 200),
        ("main", "too-long", 400),
        ("compact", "summary", 200),
        ("main", None, 200),
    ]


async def test_interrupting_the_cli_mid_stream_is_seen(claude_bin: Path, tmp_path: Path) -> None:
    slow = {"text": "one two three four five six seven eight nine", "chunk_delay_ms": 30_000}
    async with SimServer(Scenario.model_validate({"default": slow})) as sim:
        (tmp_path / "work").mkdir()
        proc = await asyncio.create_subprocess_exec(
            str(claude_bin),
            *("-p", "--output-format", "stream-json", "--verbose", "--model", "haiku"),
            *("--", "take your time"),
            cwd=tmp_path / "work",
            env=offline_env(sim.url_for("erin"), tmp_path),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            await sim.wait_for_request(timeout=30)
            proc.send_signal(signal.SIGINT)
            entry = await sim.wait_for_request(lambda r: r.outcome != "pending", timeout=30)
        finally:
            if proc.returncode is None:
                proc.kill()
            await proc.wait()
    assert (entry.agent, entry.outcome) == ("erin", "disconnected")
