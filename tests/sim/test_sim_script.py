"""Choosing answers: hyperhive/sim/script.py."""

from __future__ import annotations

import json
from typing import Any

from hyperhive.sim.inbound import COMPACT_MARKER, TITLE_MARKER, Inbound, parse
from hyperhive.sim.scenario import Scenario
from hyperhive.sim.script import Decision, Script


def request(
    prompt: str | None = "hello",
    *,
    agent: str | None = "alice",
    session_id: str | None = None,
    tool: tuple[str, str] | None = None,
    system: str = "",
    **extra: Any,
) -> Inbound:
    """A request whose latest user message is `prompt`, or a result of tool `tool=(name, text)`."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": "first words"}]
    if tool is not None:
        name, result = tool
        messages.append(
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t9", "name": name, "input": {}}],
            }
        )
        messages.append(
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "t9", "content": result}],
            }
        )
    if prompt is not None:
        messages.append({"role": "user", "content": prompt})
    body = {"model": "m", "messages": messages, "system": system, **extra}
    return parse(body, agent=agent, session_id=session_id)


def script(*rules: dict[str, Any], **top: Any) -> Script:
    return Script(Scenario.model_validate({"rules": list(rules), **top}))


def answer(decision: Decision) -> str:
    assert decision.message is not None
    return "".join(b["text"] for b in decision.message.content if b["type"] == "text")


def test_no_rule_gives_the_default() -> None:
    decision = script(default={"text": "hi {agent}"}).decide(request(), 400)
    assert decision.rule_id is None
    assert answer(decision) == "hi alice"
    assert decision.status == 200
    assert decision.message is not None
    assert decision.message.stop_reason == "end_turn"


def test_first_matching_rule_wins() -> None:
    s = script(
        {"id": "bob", "agent": "bob", "text": "for bob"},
        {"id": "any-a", "agent": "a*", "text": "glob"},
        {"id": "exact", "agent": "alice", "text": "exact"},
    )
    assert s.decide(request(), 1).rule_id == "any-a"
    assert s.decide(request(agent="bob"), 1).rule_id == "bob"
    assert s.decide(request(agent=None), 1).rule_id is None


def test_user_text_conditions() -> None:
    s = script(
        {"id": "contains", "when_user_contains": "question"},
        {"id": "regex", "when_user_regex": r"^\d+ apples$"},
    )
    assert s.decide(request("a question for you"), 1).rule_id == "contains"
    assert s.decide(request("12 apples"), 1).rule_id == "regex"
    assert s.decide(request("12 apples and pears"), 1).rule_id is None
    # only the latest user message counts, not earlier ones ("first words")
    assert script({"when_user_contains": "first"}).decide(request(), 1).rule_id is None


def test_tool_result_conditions() -> None:
    s = script(
        {
            "id": "send-failed",
            "when_tool_result_for": "mcp__hyperhive__send",
            "when_tool_result_contains": "denied",
        },
        {"id": "send", "when_tool_result_for": "mcp__hyperhive__*", "text": "sent: {tool_result}"},
        {"id": "text", "when_user_contains": "ok"},
    )
    send = request(None, tool=("mcp__hyperhive__send", "delivered to bob"))
    assert s.decide(send, 1).rule_id == "send"
    assert answer(s.decide(send, 1)) == "sent: delivered to bob"
    denied = request(None, tool=("mcp__hyperhive__send", "permission denied"))
    assert s.decide(denied, 1).rule_id == "send-failed"
    assert (
        s.decide(request(None, tool=("Bash", "ok")), 1).rule_id is None
    )  # results are not user text


def test_system_and_session_conditions() -> None:
    s = script(
        {"id": "sys", "when_system_contains": "You are the manager"},
        {"id": "sess", "session_id": "abc-*"},
    )
    assert s.decide(request(system="Intro. You are the manager of the hive."), 1).rule_id == "sys"
    assert s.decide(request(session_id="abc-123"), 1).rule_id == "sess"
    assert s.decide(request(session_id="xyz"), 1).rule_id is None


def test_times_limits_a_rule_and_counts_are_per_script() -> None:
    scenario = Scenario.model_validate({"rules": [{"id": "once", "times": 1, "text": "first"}]})
    s = Script(scenario)
    assert s.decide(request(), 1).rule_id == "once"
    assert s.decide(request(), 1).rule_id is None
    assert s.fired("once") == 1
    assert Script(scenario).decide(request(), 1).rule_id == "once"


def test_tool_use_reply_with_placeholders() -> None:
    s = script(
        {
            "reply": [
                {"type": "text", "text": "{agent} sending"},
                {
                    "type": "tool_use",
                    "name": "mcp__hyperhive__send",
                    "input": {
                        "to": "bob",
                        "body": "{user_text} from {agent}",
                        "n": 1,
                        "keep": "{other}",
                    },
                },
            ]
        }
    )
    decision = s.decide(request("hello bob"), 1)
    assert decision.message is not None
    tool = decision.message.content[1]
    assert tool["input"] == {"to": "bob", "body": "hello bob from alice", "n": 1, "keep": "{other}"}
    assert tool["id"].startswith("toolu_")
    assert decision.message.stop_reason == "tool_use"
    assert [b["type"] for b in decision.message.content] == ["text", "tool_use"]


def test_usage_is_exact_when_given_and_estimated_otherwise() -> None:
    given = script({"usage": {"input_tokens": 7, "output_tokens": 8, "cache_read_input_tokens": 9}})
    message = given.decide(request(), 4000).message
    assert message is not None
    assert message.usage.as_dict() == {
        "input_tokens": 7,
        "output_tokens": 8,
        "cache_read_input_tokens": 9,
        "cache_creation_input_tokens": 0,
    }
    estimated = script().decide(request(), 4000).message
    assert estimated is not None
    assert estimated.usage.input_tokens == 1000
    assert estimated.usage.output_tokens >= 1


def test_error_and_pacing() -> None:
    s = script(
        {
            "error": {"status": 529, "message": "overloaded for {agent}"},
            "delay_ms": 250,
            "chunk_delay_ms": 20,
        }
    )
    decision = s.decide(request(), 1)
    assert decision.message is None
    assert decision.error is not None
    assert (decision.status, decision.error.error_type) == (529, "overloaded_error")
    assert decision.error.message == "overloaded for alice"
    assert (decision.delay, decision.chunk_delay) == (0.25, 0.02)


def test_compaction_gets_a_builtin_summary_unless_a_rule_asks() -> None:
    compact = request(f"CRITICAL: text only. {COMPACT_MARKER}. <analysis> then <summary>.")
    plain = script({"id": "catch-all", "text": "not a summary"})
    decision = plain.decide(compact, 1)
    assert decision.rule_id is None
    text = answer(decision)
    assert "<summary>" in text and "</summary>" in text
    assert "- first words" in text  # the user's earlier messages are summarised
    assert COMPACT_MARKER not in text
    custom = script({"id": "c", "when_kind": "compact", "text": "<summary>mine</summary>"})
    assert custom.decide(compact, 1).rule_id == "c"
    anything = script({"id": "any", "when_kind": "any", "text": "x"})
    assert anything.decide(compact, 1).rule_id == "any"
    assert anything.decide(request(), 1).rule_id == "any"
    assert custom.decide(request(), 1).rule_id is None  # a compact rule ignores normal turns


def test_json_output_requests_get_json_from_the_schema() -> None:
    schema = {
        "type": "object",
        "properties": {
            "title": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "n": {"type": "integer"},
            "mode": {"enum": ["a", "b"]},
        },
    }
    title = request(
        "<session>fix it</session>",
        system=f"{TITLE_MARKER} ...",
        output_config={"format": {"type": "json_schema", "schema": schema}},
    )
    assert title.kind == "title"
    assert json.loads(answer(script().decide(title, 1))) == {
        "title": "Scripted session",
        "tags": [],
        "n": 0,
        "mode": "a",
    }
    rule = script({"id": "t", "when_kind": "title", "text": '{"title": "Mine"}'})
    assert rule.decide(title, 1).rule_id == "t"
