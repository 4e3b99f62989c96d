"""Reading requests: hyperhive/sim/inbound.py."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hyperhive.sim.inbound import COMPACT_MARKER, TITLE_MARKER, BadBody, parse

REMINDER = "<system-reminder>\nAttribution: commit with a trailer\n</system-reminder>\n"


def body(*messages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"model": "claude-haiku-5-5", "max_tokens": 100, "messages": list(messages), **extra}


def user(*blocks: Any) -> dict[str, Any]:
    return {"role": "user", "content": list(blocks)}


def text(value: str) -> dict[str, str]:
    return {"type": "text", "text": value}


def test_latest_user_text_skips_reminders_and_trailing_system_messages() -> None:
    seen = parse(
        body(
            user(text("old")),
            {"role": "assistant", "content": [text("answer")]},
            user(text(REMINDER), text("the question")),
            {"role": "system", "content": "<total_tokens>1000 tokens left</total_tokens>"},
        ),
        agent="alice",
        session_id="s1",
    )
    assert seen.latest_user_text == "the question"
    assert "Attribution" in seen.raw_user_text
    assert seen.user_texts == ("old", "the question")
    assert (seen.agent, seen.session_id, seen.kind, seen.tool_results) == (
        "alice",
        "s1",
        "main",
        (),
    )


def test_string_content() -> None:
    seen = parse(body({"role": "user", "content": "plain"}), agent=None, session_id=None)
    assert seen.latest_user_text == "plain"


def test_post_compaction_scaffolding_is_not_user_text() -> None:
    seen = parse(
        body(
            user(
                text(REMINDER),
                text("This session is being continued from a previous conversation ... Summary: x"),
                text(
                    "<local-command-caveat>The command below was run ...</local-command-caveat>\n"
                ),
                text("<command-name>/compact</command-name>\n"),
                text("<local-command-stdout>Compacted </local-command-stdout>\n"),
                text("next prompt"),
            )
        ),
        agent=None,
        session_id=None,
    )
    assert seen.latest_user_text == "next prompt"


def test_tool_results_are_named_from_the_assistant_tool_use() -> None:
    seen = parse(
        body(
            user(text("go")),
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "t1", "name": "mcp__hyperhive__send", "input": {}},
                    {"type": "tool_use", "id": "t2", "name": "Bash", "input": {}},
                ],
            },
            user(
                {"type": "tool_result", "tool_use_id": "t1", "content": "delivered"},
                {
                    "type": "tool_result",
                    "tool_use_id": "t2",
                    "content": [text("line 1"), text("line 2")],
                    "is_error": True,
                },
                {"type": "tool_result", "tool_use_id": "unknown", "content": "?"},
            ),
        ),
        agent=None,
        session_id=None,
    )
    assert [(r.name, r.text, r.is_error) for r in seen.tool_results] == [
        ("mcp__hyperhive__send", "delivered", False),
        ("Bash", "line 1\nline 2", True),
        (None, "?", False),
    ]
    assert seen.tool_result_for == "mcp__hyperhive__send"
    assert seen.latest_user_text == ""


def test_request_kinds() -> None:
    compact = parse(
        body(user(text(f"CRITICAL: ... {COMPACT_MARKER}, ..."))), agent=None, session_id=None
    )
    assert compact.kind == "compact"
    schema = {"type": "object", "properties": {"title": {"type": "string"}}}
    title = parse(
        body(
            user(text("<session>\nfix it\n</session>")),
            system=[text("You are Claude Code"), text(f"{TITLE_MARKER} so the user can ...")],
            output_config={"format": {"type": "json_schema", "schema": schema}},
        ),
        agent=None,
        session_id=None,
    )
    assert title.kind == "title"
    assert title.json_schema == schema
    assert "You are Claude Code" in title.system_text


def test_session_id_falls_back_to_metadata() -> None:
    metadata = {"user_id": json.dumps({"device_id": "d", "session_id": "abc"})}
    seen = parse(body(user(text("x")), metadata=metadata), agent=None, session_id=None)
    assert seen.session_id == "abc"
    seen = parse(body(user(text("x")), metadata=metadata), agent=None, session_id="header")
    assert seen.session_id == "header"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([], "JSON object"),
        ({"model": "m"}, "messages"),
        ({"messages": []}, "model"),
    ],
)
def test_bad_bodies(raw: object, message: str) -> None:
    with pytest.raises(BadBody, match=message):
        parse(raw, agent=None, session_id=None)
