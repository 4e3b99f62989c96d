"""Parsing real CLI output: the reference captures (`tests/harness/reference/`, a copy of
`shared/reference/claude-code-samples/` kept in the repository so every checkout runs them;
`HIVE_REFERENCE_SAMPLES` names another folder), and our own captures
(`tests/harness/captures/`: recorded from the bundled CLI against `hive sim` by
`scripts/record_captures.py`), so the parser is tested on the newest CLI version after an
upgrade too."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from hyperhive.harness.stream import (
    OutcomeKind,
    TurnTally,
    classify,
    parse_line,
    parse_lines,
    parse_stream_line,
)
from hyperhive.harness.streamevents import (
    ApiRetry,
    AssistantText,
    AssistantThinking,
    AssistantToolUse,
    CompactBoundary,
    ControlRequest,
    ControlResponse,
    Event,
    PermissionDenied,
    RateLimit,
    Result,
    SystemInit,
    SystemStatus,
    TaskEvent,
    ToolResult,
    Unknown,
    Usage,
    UserText,
)


def _find_samples() -> Path:
    explicit = os.environ.get("HIVE_REFERENCE_SAMPLES")
    return Path(explicit) if explicit else Path(__file__).resolve().parent / "reference"


SAMPLES = _find_samples()
CAPTURES = Path(__file__).resolve().parent / "captures"
OWN = sorted(CAPTURES.glob("*.jsonl"))
ALL_SAMPLES = sorted(SAMPLES.glob("*.jsonl"))


def test_the_reference_captures_are_in_the_checkout() -> None:
    names = {p.name for p in ALL_SAMPLES}
    assert {"hello.jsonl", "err_429.jsonl", "interrupt.transcript.jsonl"} <= names, SAMPLES


@dataclass
class Capture:
    """A sample file: plain captures are CLI stdout; transcripts mix records
    `{"dt", "cmd"}`, `{"dt", ">>": stdin line}`, `{"dt", "<<": stdout line}`, `{"dt", "rc"}`."""

    stdout: list[dict[str, Any]] = field(default_factory=list)
    stdin: list[dict[str, Any]] = field(default_factory=list)
    rc: int | None = None

    def events(self) -> list[Event]:
        return parse_lines(self.stdout)

    def results(self) -> list[Result]:
        return [e for e in self.events() if isinstance(e, Result)]


def load(name_or_path: str | Path) -> Capture:
    path = name_or_path if isinstance(name_or_path, Path) else SAMPLES / name_or_path
    capture = Capture()
    for text in path.read_text().splitlines():
        if not text.strip():
            continue
        record = json.loads(text)
        if "dt" not in record:
            capture.stdout.append(record)
        elif "<<" in record:
            capture.stdout.append(record["<<"])
        elif ">>" in record:
            capture.stdin.append(record[">>"])
        elif "rc" in record:
            capture.rc = record["rc"]
    return capture


def outcome_of(name: str | Path) -> tuple[OutcomeKind, str]:
    capture = load(name)
    results = capture.results()
    outcome = classify(results[-1] if results else None, "", exit_code=capture.rc)
    return outcome.kind, outcome.note


# -- every sample parses --------------------------------------------------------------------


@pytest.mark.parametrize("path", ALL_SAMPLES, ids=lambda p: p.name)
def test_every_sample_line_parses(path: Path) -> None:
    capture = load(path)
    lines = capture.stdout + capture.stdin
    assert lines
    for line in lines:
        events = parse_line(line)
        assert events, line
        # the text form parses to the same events
        assert parse_line(json.dumps(line)) == events
        # key order is not stable: reversed keys give the same events
        assert parse_line(dict(reversed(list(line.items())))) == events
    # every stdout line of these captures is a modelled type
    unknown = [e for e in capture.events() if isinstance(e, Unknown)]
    assert unknown == []


def test_init_line() -> None:
    init = load("mcp_allowed.jsonl").events()[0]
    assert isinstance(init, SystemInit)
    assert init.version == "2.1.330"
    assert init.model == "claude-opus-5-5"
    assert init.session_id
    assert "Bash" in init.tools
    assert init.mcp_status("hive") == "connected"
    assert init.mcp_status("nope") is None
    bad = load("mcp_bad_server.jsonl").events()[0]
    assert isinstance(bad, SystemInit)
    assert bad.mcp_status("hive") == "failed"


def test_hello() -> None:
    events = load("hello.jsonl").events()
    assert [type(e) for e in events] == [SystemInit, AssistantText, Result]
    text, result = events[1], events[2]
    assert isinstance(text, AssistantText) and text.text == "MOCK_REPLY: hello"
    assert isinstance(result, Result)
    assert result.usage == Usage(2560, 11, 0, 0)
    assert result.total_cost_usd == pytest.approx(0.01046)
    assert result.turn_cost_usd == pytest.approx(0.01046)
    assert result.result == "MOCK_REPLY: hello"
    assert result.terminal_reason == "completed"
    assert result.stop_reason == "end_turn"
    assert result.num_turns == 1
    assert result.duration_ms > 0
    assert outcome_of("hello.jsonl") == (OutcomeKind.OK, "")


def test_mcp_parallel_tool_counts_and_usage() -> None:
    tally = TurnTally()
    tally.feed_all(load("mcp_parallel.jsonl").events())
    assert tally.tool_calls == {"mcp__hive__send": 2}
    assert tally.total_tool_calls == 2
    assert tally.tool_errors == 0
    assert tally.usage == Usage(
        input_tokens=5387, output_tokens=93, cache_read_tokens=0, cache_creation_tokens=0
    )
    assert tally.total_cost_usd == pytest.approx(0.023408)
    assert tally.init is not None
    assert tally.session_id == tally.init.session_id
    results = [e for e in load("mcp_parallel.jsonl").events() if isinstance(e, ToolResult)]
    assert [r.content for r in results] == [
        "delivered to bob (3 chars)",
        "delivered to carol (3 chars)",
    ]


def test_tool_use_block() -> None:
    uses = [e for e in load("mcp_allowed.jsonl").events() if isinstance(e, AssistantToolUse)]
    assert len(uses) == 1
    assert uses[0].name == "mcp__hive__send"
    assert uses[0].input == {"to": "bob", "body": "hi from alice"}
    assert uses[0].id.startswith("toolu_")


def test_permission_denied() -> None:
    events = load("mcp_denied.jsonl").events()
    denied = [e for e in events if isinstance(e, PermissionDenied)]
    assert [d.tool_name for d in denied] == ["mcp__hive__send"]
    errors = [e for e in events if isinstance(e, ToolResult) and e.is_error]
    assert len(errors) == 1 and "haven't granted" in errors[0].content
    result = events[-1]
    assert isinstance(result, Result)
    assert [d.tool_name for d in result.permission_denials] == ["mcp__hive__send"]
    assert result.permission_denials[0].tool_input == {"to": "bob", "body": "hi from alice"}
    tally = TurnTally()
    tally.feed_all(events)
    assert (tally.permission_denied, tally.tool_errors) == (1, 1)
    assert outcome_of("mcp_denied.jsonl")[0] is OutcomeKind.OK  # the turn itself succeeded


def test_auto_compaction_mid_turn() -> None:
    events = load("err_too_long_midturn.jsonl").events()
    statuses = [e for e in events if isinstance(e, SystemStatus)]
    assert [s.status for s in statuses] == ["compacting", None]
    assert statuses[1].compact_result == "success"
    boundary = [e for e in events if isinstance(e, CompactBoundary)]
    assert boundary == [CompactBoundary("auto", 2658, 2634)]
    assert any(isinstance(e, UserText) and "continued" in e.text for e in events)
    tally = TurnTally()
    tally.feed_all(events)
    assert tally.compactions == 1
    assert outcome_of("err_too_long_midturn.jsonl")[0] is OutcomeKind.OK


def test_api_retry() -> None:
    retries = [e for e in load("err_429.jsonl").events() if isinstance(e, ApiRetry)]
    assert retries == [ApiRetry(1, 1, 624, 429, "rate_limit")]
    unreachable = [e for e in load("err_unreachable.jsonl").events() if isinstance(e, ApiRetry)]
    assert unreachable[0].error_status is None


def test_synthetic_error_message_carries_error() -> None:
    texts = [e for e in load("err_401_noretry.jsonl").events() if isinstance(e, AssistantText)]
    assert texts[0].error == "authentication_failed"


# -- classification -------------------------------------------------------------------------


def test_classify_prompt_too_long() -> None:
    kind, note = outcome_of("err_too_long.jsonl")
    assert kind is OutcomeKind.PROMPT_TOO_LONG
    assert note.startswith("Prompt is too long")


def test_classify_rate_limited() -> None:
    kind, note = outcome_of("err_429.jsonl")
    assert kind is OutcomeKind.RATE_LIMITED
    assert "429" in note


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("err_401_noretry.jsonl", "Invalid API key"),
        ("err_no_key.jsonl", "Not logged in"),
        ("err_unreachable.jsonl", "Connection refused"),
        ("max_turns.jsonl", "maximum number of turns"),
        ("max_budget.jsonl", "maximum budget"),
    ],
)
def test_classify_failed(name: str, needle: str) -> None:
    kind, note = outcome_of(name)
    assert kind is OutcomeKind.FAILED
    assert needle in note


@pytest.mark.parametrize("name", ["sigint.transcript.jsonl", "sigterm.transcript.jsonl"])
def test_classify_signal_without_result_is_cancelled(name: str) -> None:
    capture = load(name)
    assert capture.results() == []
    assert capture.rc in (0, 143)
    assert outcome_of(name)[0] is OutcomeKind.CANCELLED
    # the SIGINT capture ends with the CLI's interrupt marker
    if name.startswith("sigint"):
        assert UserText("[Request interrupted by user]") in capture.events()


def test_interrupt_transcript() -> None:
    capture = load("interrupt.transcript.jsonl")
    requests = [e for e in parse_lines(capture.stdin) if isinstance(e, ControlRequest)]
    assert [(r.request_id, r.subtype) for r in requests] == [("int_1", "interrupt")]
    responses = [e for e in capture.events() if isinstance(e, ControlResponse)]
    assert responses[0].request_id == "int_1" and responses[0].subtype == "success"
    first, second = capture.results()
    assert (first.subtype, first.terminal_reason) == ("error_during_execution", "aborted_streaming")
    assert classify(first, "").kind is OutcomeKind.CANCELLED
    assert classify(second, "").kind is OutcomeKind.OK


@pytest.mark.parametrize(
    "name",
    [
        "multiturn.transcript.jsonl",
        "queue.transcript.jsonl",
        "initialize.transcript.jsonl",
        "can_use_tool.transcript.jsonl",
        "session_continue.jsonl",
        "mcp_allowed.jsonl",
        "mcp_boom.jsonl",
        "mcp_bad_server.jsonl",
    ],
)
def test_classify_ok_runs(name: str) -> None:
    results = load(name).results()
    assert results
    assert all(classify(r, "").kind is OutcomeKind.OK for r in results)


def test_can_use_tool_control_messages() -> None:
    capture = load("can_use_tool.transcript.jsonl")
    asks = [e for e in capture.events() if isinstance(e, ControlRequest)]
    assert [a.subtype for a in asks] == ["can_use_tool", "can_use_tool"]
    assert asks[0].request["tool_name"] == "mcp__hive__send"
    answers = [e for e in parse_lines(capture.stdin) if isinstance(e, ControlResponse)]
    assert [a.response["behavior"] for a in answers] == ["allow", "deny"]
    prompts = [e for e in parse_lines(capture.stdin) if isinstance(e, UserText)]
    assert prompts[0].text.startswith("MOCK_TOOL")


def test_session_continue_cost_is_cumulative() -> None:
    (result,) = load("session_continue.jsonl").results()
    assert result.total_cost_usd == pytest.approx(0.021064)
    assert result.turn_cost_usd == pytest.approx(0.010604)
    assert result.usage.input_tokens == 2591


def test_classify_without_result() -> None:
    assert classify(None, "").kind is OutcomeKind.CANCELLED
    assert classify(None, "", exit_code=0).kind is OutcomeKind.CANCELLED
    assert classify(None, "", exit_code=-9).kind is OutcomeKind.CANCELLED
    assert classify(None, "", exit_code=143).kind is OutcomeKind.CANCELLED
    crashed = classify(None, "noise\nerror: unknown option '--bogus'\n", exit_code=1)
    assert crashed.kind is OutcomeKind.FAILED
    assert "unknown option" in crashed.note and "code 1" in crashed.note
    assert classify(None, "", exit_code=1, interrupted=True).kind is OutcomeKind.CANCELLED


def _result(**kw: Any) -> Result:
    base: dict[str, Any] = {
        "subtype": "success",
        "is_error": True,
        "result": None,
        "session_id": "s",
    }
    return Result(**(base | kw))


def test_classify_edge_cases() -> None:
    assert classify(_result(terminal_reason="aborted_tools")).kind is OutcomeKind.CANCELLED
    assert classify(_result(terminal_reason="blocking_limit")).kind is OutcomeKind.PROMPT_TOO_LONG
    assert classify(_result(api_error_status=429)).kind is OutcomeKind.RATE_LIMITED
    usage_limit = _result(result="Claude AI usage limit reached|1790000000")
    assert classify(usage_limit).kind is OutcomeKind.RATE_LIMITED
    overloaded = classify(_result(result="API Error: 529 overloaded", api_error_status=529))
    assert overloaded.kind is OutcomeKind.FAILED and "529" in overloaded.note
    bare = classify(_result(subtype="error_during_execution", terminal_reason="turn_setup_failed"))
    assert bare.kind is OutcomeKind.FAILED and bare.note == "error during execution"
    long = classify(_result(result="x" * 5000))
    assert len(long.note) <= 500
    # success text that mentions limits is still ok
    fine = _result(is_error=False, result="The prompt is too long, said nobody. 429.")
    assert classify(fine).kind is OutcomeKind.OK


# -- robustness -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["", "   ", "not json", "{bad", "[1, 2]", "42", '"str"', "null", b"\xff\xfe{"],
)
def test_malformed_lines_become_unknown(text: str | bytes) -> None:
    line = parse_stream_line(text)
    assert line.raw == {}
    (event,) = line.events
    assert isinstance(event, Unknown) and event.text is not None and event.reason
    assert parse_line(text) == [event]


@pytest.mark.parametrize(
    "raw",
    [
        {},
        {"type": None},
        {"type": "mystery", "x": 1},
        {"type": "system"},
        {"type": "system", "subtype": "brand_new"},
        {"type": "assistant"},
        {"type": "assistant", "message": {"content": "a string"}},
        {"type": "assistant", "message": {"content": [{"type": "image"}, 5]}},
        {"type": "user", "message": None},
        {"type": "result"},
        {"type": "result", "usage": [], "permission_denials": "x", "total_cost_usd": "1"},
        {"type": "system", "subtype": "init", "tools": "Bash", "mcp_servers": [1, {"name": 2}]},
        {"type": "control_request", "request": []},
        {"type": "rate_limit_event"},
        {"type": "stream_event", "event": {"type": "content_block_delta"}},
    ],
)
def test_odd_but_valid_json_never_raises(raw: dict[str, Any]) -> None:
    events = parse_line(raw)
    assert events
    assert parse_line(json.dumps(raw)) == events


def test_result_defaults_for_missing_fields() -> None:
    (result,) = parse_line({"type": "result"})
    assert isinstance(result, Result)
    assert (result.subtype, result.is_error, result.result) == ("", False, None)
    assert result.usage == Usage()
    assert result.turn_cost_usd is None
    assert classify(result).kind is OutcomeKind.FAILED  # not "success": do not call it ok


def test_one_event_per_block_in_order() -> None:
    raw = {
        "type": "assistant",
        "message": {
            "id": "m1",
            "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "s"},
                {"type": "text", "text": "doing it"},
                {"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": "ls"}},
                {"type": "tool_use", "id": "t2", "name": "Read", "input": {"file_path": "/x"}},
            ],
        },
    }
    events = parse_line(raw)
    assert events == [
        AssistantThinking("hmm", "m1"),
        AssistantText("doing it", "m1"),
        AssistantToolUse("t1", "Bash", {"command": "ls"}, "m1"),
        AssistantToolUse("t2", "Read", {"file_path": "/x"}, "m1"),
    ]
    tally = TurnTally()
    tally.feed_all(events)
    assert tally.tool_calls == {"Bash": 1, "Read": 1}


def test_tool_result_content_shapes() -> None:
    raw = {
        "type": "user",
        "message": {
            "content": [
                {"type": "tool_result", "tool_use_id": "a", "content": "plain"},
                {
                    "type": "tool_result",
                    "tool_use_id": "b",
                    "content": [{"type": "text", "text": "one"}, {"type": "image"}],
                    "is_error": True,
                },
                {"type": "tool_result", "tool_use_id": "c"},
            ]
        },
    }
    assert parse_line(raw) == [
        ToolResult("a", "plain"),
        ToolResult("b", "one\n[image]", True),
        ToolResult("c", ""),
    ]


def test_rate_limit_event() -> None:
    raw = {
        "type": "rate_limit_event",
        "rate_limit_info": {"status": "rejected", "resetsAt": 1790000000, "rateLimitType": "x"},
        "uuid": "u",
        "session_id": "s",
    }
    (event,) = parse_line(raw)
    assert event == RateLimit("rejected", 1790000000, "x", None)
    tally = TurnTally()
    tally.feed(event)
    assert tally.rate_limit == event


def test_tally_without_result() -> None:
    tally = TurnTally()
    assert (tally.usage, tally.total_cost_usd, tally.session_id) == (None, None, None)


def test_task_events() -> None:
    started = {
        "type": "system",
        "subtype": "task_started",
        "task_id": "b1",
        "description": "make build",
        "task_type": "local_bash",
        "is_backgrounded": True,
    }
    updated = {
        "type": "system",
        "subtype": "task_updated",
        "task_id": "b1",
        "patch": {"status": "completed"},
    }
    done = {
        "type": "system",
        "subtype": "task_notification",
        "task_id": "b1",
        "status": "completed",
        "summary": "build ok",
    }
    assert parse_lines([started, updated, done]) == [
        TaskEvent("task_started", "b1", None, "make build"),
        TaskEvent("task_updated", "b1", "completed"),
        TaskEvent("task_notification", "b1", "completed", summary="build ok"),
    ]


def _result_line(text: str, tokens: tuple[int, int], total: float, turn: float) -> dict[str, Any]:
    return {
        "type": "result",
        "subtype": "success",
        "is_error": False,
        "result": text,
        "session_id": "s",
        "total_cost_usd": total,
        "usage": {"input_tokens": tokens[0], "output_tokens": tokens[1]},
        "model_usage_since_last_result": {"m": {"costUSD": turn}},
    }


def test_tally_sums_several_results() -> None:
    # after its first result the CLI waits for background shells and answers each completion
    # with another turn and result (measured with 2.1.330); each reports only its own usage
    tally = TurnTally()
    tally.feed_all(parse_line(_result_line("first", (100, 10), 0.5, 0.002)))
    tally.feed_all(parse_line(_result_line("second", (1000, 20), 0.6, 0.1)))
    assert tally.result is not None and tally.result.result == "second"
    assert tally.usage == Usage(1100, 30)
    assert tally.turn_cost_usd == pytest.approx(0.102)
    assert tally.total_cost_usd == pytest.approx(0.6)


# -- our own captures (scripts/record_captures.py: the bundled CLI against hive sim) ---------

QUIET = {"thinking_tokens"}  # progress counters the harness drops (harness/loop.py)


def own(name: str) -> Path:
    return CAPTURES / f"{name}.jsonl"


def test_our_captures_are_there() -> None:
    assert {p.stem for p in OWN} >= {
        "hello",
        "tools",
        "denied",
        "err_429",
        "err_401",
        "err_too_long",
        "max_turns",
        "err_unreachable",
        "sigint",
    }


@pytest.mark.parametrize("path", OWN, ids=lambda p: p.name)
def test_every_line_of_our_captures_parses(path: Path) -> None:
    capture = load(path)
    assert capture.stdout and capture.rc is not None
    for line in capture.stdout:
        events = parse_line(line)
        assert events, line
        assert parse_line(json.dumps(line)) == events
        assert parse_line(dict(reversed(list(line.items())))) == events
    unknown = [e for e in capture.events() if isinstance(e, Unknown)]
    assert [u.raw.get("subtype") for u in unknown if u.raw.get("subtype") not in QUIET] == []
    init = capture.events()[0]
    assert isinstance(init, SystemInit) and init.session_id and "Bash" in init.tools


def test_our_hello() -> None:
    events = [e for e in load(own("hello")).events() if not isinstance(e, Unknown)]
    assert [type(e) for e in events] == [SystemInit, AssistantText, Result]
    text, result = events[1], events[2]
    assert isinstance(text, AssistantText) and text.text == "Hello from the sim."
    assert isinstance(result, Result) and result.result == "Hello from the sim."
    assert result.num_turns == 1 and result.usage.output_tokens > 0
    assert outcome_of(own("hello")) == (OutcomeKind.OK, "")


def test_our_thinking_and_tool_round_trip() -> None:
    events = load(own("tools")).events()
    assert [e.thinking for e in events if isinstance(e, AssistantThinking)] == ["I should run it."]
    (use,) = [e for e in events if isinstance(e, AssistantToolUse)]
    assert (use.name, use.input) == ("Bash", {"command": "echo captured-output"})
    (result,) = [e for e in events if isinstance(e, ToolResult)]
    assert result.tool_use_id == use.id and "captured-output" in result.content
    assert not result.is_error
    tally = TurnTally()
    tally.feed_all(events)
    assert tally.tool_calls == {"Bash": 1} and tally.tool_errors == 0
    assert outcome_of(own("tools"))[0] is OutcomeKind.OK


def test_our_permission_denied() -> None:
    events = load(own("denied")).events()
    assert [d.tool_name for d in events if isinstance(d, PermissionDenied)] == ["Bash"]
    (result,) = [e for e in events if isinstance(e, Result)]
    assert [d.tool_input for d in result.permission_denials] == [
        {"command": "mkdir made-by-the-model"}
    ]
    tally = TurnTally()
    tally.feed_all(events)
    assert tally.permission_denied == 1
    assert outcome_of(own("denied"))[0] is OutcomeKind.OK  # the turn itself succeeded


@pytest.mark.parametrize(
    ("name", "kind", "needle"),
    [
        ("err_429", OutcomeKind.RATE_LIMITED, "429"),
        ("err_401", OutcomeKind.FAILED, "Invalid API key"),
        ("err_too_long", OutcomeKind.PROMPT_TOO_LONG, "Prompt is too long"),
        ("max_turns", OutcomeKind.FAILED, "maximum number of turns"),
        ("err_unreachable", OutcomeKind.FAILED, "Connection refused"),
        ("sigint", OutcomeKind.CANCELLED, ""),
    ],
)
def test_our_failures_classify(name: str, kind: OutcomeKind, needle: str) -> None:
    got, note = outcome_of(own(name))
    assert got is kind
    assert needle in note
