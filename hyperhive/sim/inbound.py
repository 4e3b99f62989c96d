"""Reading one incoming Messages API request: who asks, for what, and what the latest turn says.

Pure: takes the decoded JSON body plus the agent/session tags, returns an `Inbound` value.

Invariants:
- The latest user message is the last element of `messages` whose role is "user". Claude Code
  2.1.330 also puts `role: "system"` entries in `messages` (environment notes, token budgets),
  sometimes last; they are never the "user message".
- `latest_user_text` is what the user said in that message: its text blocks joined with "\\n",
  minus Claude Code's own scaffolding: `<system-reminder>` spans, the post-compaction summary
  block ("This session is being continued ..."), and local slash-command echo blocks
  (`<local-command-caveat>`, `<command-name>`, `<local-command-stdout>`). The CLI merges
  consecutive user messages into one, so after `/compact` the summary and the next prompt
  share a message. Tool results are not text. `raw_user_text` keeps everything.
- A tool result's `name` comes from the `tool_use` block with the same id in an earlier
  assistant message; `None` when no such block exists.
- `kind` is "compact" when the latest user text is Claude Code's summarisation prompt, "title"
  when the system prompt is its session-naming prompt, else "main".
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hyperhive.sim.scenario import RequestKind

# Phrases measured on claude 2.1.330 (see docs/sim.md); each is stable across its prompt variants.
COMPACT_MARKER = "Your task is to create a detailed summary of the conversation so far"
TITLE_MARKER = "You are naming a coding session"

_REMINDER = re.compile(r"<system-reminder>.*?</system-reminder>\s*", re.DOTALL)
_SCAFFOLD = re.compile(
    r"This session is being continued from a previous conversation"
    r"|<local-command-(?:caveat|stdout|stderr)>"
    r"|<command-(?:name|message|args)>"
)


@dataclass(frozen=True, slots=True)
class ToolResult:
    """One `tool_result` block of the latest user message."""

    tool_use_id: str
    name: str | None
    text: str
    is_error: bool = False


@dataclass(frozen=True, slots=True)
class Inbound:
    """The facts about a request that rules match on and logs record."""

    agent: str | None
    session_id: str | None
    model: str
    stream: bool
    kind: RequestKind
    system_text: str
    latest_user_text: str
    raw_user_text: str
    tool_results: tuple[ToolResult, ...] = ()
    json_schema: Mapping[str, Any] | None = None  # output_config.format.schema, if any
    user_texts: tuple[str, ...] = field(default=(), repr=False)  # every user text, oldest first

    @property
    def tool_result_for(self) -> str | None:
        """Name of the tool the first tool result answers (None without tool results)."""
        return self.tool_results[0].name if self.tool_results else None

    @property
    def tool_result_text(self) -> str:
        return "\n".join(r.text for r in self.tool_results)


class BadBody(ValueError):
    """The body is not a Messages API request; the message says why in one line."""


def parse(body: object, *, agent: str | None, session_id: str | None) -> Inbound:
    """Read a decoded request body. Raises `BadBody` for anything that is not a request."""
    if not isinstance(body, dict):
        raise BadBody("request body must be a JSON object")
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise BadBody("messages: field required (a list)")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadBody("model: field required (a string)")

    latest: Mapping[str, Any] = {}
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            latest = message
            break
    content = latest.get("content", "")
    raw_text = _text_of(content)
    system_text = _text_of(body.get("system", ""))
    names = _tool_names(messages)
    results = tuple(
        ToolResult(
            tool_use_id=str(block.get("tool_use_id", "")),
            name=names.get(str(block.get("tool_use_id", ""))),
            text=_text_of(block.get("content", "")),
            is_error=bool(block.get("is_error", False)),
        )
        for block in _blocks(content)
        if block.get("type") == "tool_result"
    )
    kind: RequestKind = "main"
    if COMPACT_MARKER in raw_text:
        kind = "compact"
    elif TITLE_MARKER in system_text:
        kind = "title"
    return Inbound(
        agent=agent,
        session_id=session_id or _metadata_session(body),
        model=model,
        stream=bool(body.get("stream", False)),
        kind=kind,
        system_text=system_text,
        latest_user_text=said(content),
        raw_user_text=raw_text,
        tool_results=results,
        json_schema=_json_schema(body),
        user_texts=tuple(
            text
            for m in messages
            if isinstance(m, dict) and m.get("role") == "user"
            for text in [said(m.get("content", ""))]
            if text
        ),
    )


def said(content: object) -> str:
    """The user's own words in a message's content (see the module invariants)."""
    pieces = [content] if isinstance(content, str) else _texts(content)
    kept = []
    for piece in pieces:
        text = _REMINDER.sub("", piece).strip()
        if text and not _SCAFFOLD.match(text):
            kept.append(text)
    return "\n".join(kept)


def _blocks(content: object) -> list[Mapping[str, Any]]:
    if isinstance(content, list):
        return [b for b in content if isinstance(b, dict)]
    return []


def _text_of(content: object) -> str:
    """Text of a string or of the `text` blocks in a block list (other blocks skipped)."""
    if isinstance(content, str):
        return content
    return "\n".join(_texts(content))


def _texts(content: object) -> list[str]:
    return [
        b["text"]
        for b in _blocks(content)
        if b.get("type") == "text" and isinstance(b.get("text"), str)
    ]


def _tool_names(messages: Sequence[object]) -> dict[str, str]:
    names: dict[str, str] = {}
    for message in messages:
        if isinstance(message, dict) and message.get("role") == "assistant":
            for block in _blocks(message.get("content")):
                if block.get("type") == "tool_use" and isinstance(block.get("name"), str):
                    names[str(block.get("id", ""))] = block["name"]
    return names


def _metadata_session(body: Mapping[str, Any]) -> str | None:
    """Claude Code also puts the session id in `metadata.user_id` (a JSON string)."""
    metadata = body.get("metadata")
    user_id = metadata.get("user_id") if isinstance(metadata, dict) else None
    if not isinstance(user_id, str):
        return None
    try:
        decoded = json.loads(user_id)
    except ValueError:
        return None
    session = decoded.get("session_id") if isinstance(decoded, dict) else None
    return session if isinstance(session, str) and session else None


def _json_schema(body: Mapping[str, Any]) -> Mapping[str, Any] | None:
    config = body.get("output_config")
    fmt = config.get("format") if isinstance(config, dict) else None
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        schema = fmt.get("schema")
        return schema if isinstance(schema, dict) else {}
    return None
