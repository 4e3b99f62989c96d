"""Deciding the answer to one request: rule matching, `times` counting, placeholders, built-ins.

A `Script` wraps one `Scenario` with its per-rule fire counts. The server swaps the whole
`Script` on a hot reload, which resets the counts.

Invariants:
- Rules are tried in file order; the first whose conditions all hold wins. A rule whose `times`
  is used up is skipped as if it did not match. `decide` does the check and the count without
  awaiting, so concurrent requests on one event loop never both take a rule's last firing.
- When no rule matches: a compaction request gets a built-in `<analysis>`/`<summary>` answer
  (Claude Code asks a second time when `<summary>` is missing), a request that demands JSON
  output (`output_config.format`, e.g. the session-title call) gets a JSON object built from the
  schema, and anything else gets `scenario.default`.
- Placeholders `{agent}`, `{session_id}`, `{user_text}`, `{tool_result}` are replaced in reply
  text, thinking and every string inside tool input; other braces are left alone.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hyperhive.sim import sse
from hyperhive.sim.inbound import Inbound
from hyperhive.sim.scenario import (
    Answer,
    ErrorSpec,
    Rule,
    Scenario,
    TextBlock,
    ThinkingBlock,
    ToolUseBlock,
)

_PLACEHOLDER = re.compile(r"\{(agent|session_id|user_text|tool_result)\}")
_SUMMARY_ITEMS = 20
_SUMMARY_CHARS = 300


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer chosen for one request: a message or an error, plus its pacing."""

    rule_id: str | None  # None: the default or a built-in answered
    message: sse.Message | None
    error: ErrorSpec | None
    delay: float  # seconds before the first byte
    chunk_delay: float  # seconds before each content_block_delta

    @property
    def status(self) -> int:
        return self.error.status if self.error is not None else 200


class Script:
    """A scenario plus its fire counts."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self._fired: dict[str, int] = {}
        self._regex = {
            rule.when_user_regex: re.compile(rule.when_user_regex)
            for rule in scenario.rules
            if rule.when_user_regex is not None
        }

    def fired(self, rule_id: str) -> int:
        """How many times a rule has answered since this script was loaded."""
        return self._fired.get(rule_id, 0)

    def decide(self, inbound: Inbound, body_size: int) -> Decision:
        """Pick and render the answer to `inbound` (the request body was `body_size` bytes)."""
        for rule in self.scenario.rules:
            rule_id = rule.id or ""
            if rule.times and self._fired.get(rule_id, 0) >= rule.times:
                continue
            if self._matches(rule, inbound):
                self._fired[rule_id] = self._fired.get(rule_id, 0) + 1
                return _render(rule, rule_id, inbound, body_size)
        if inbound.kind == "compact":
            return _render(Answer(text=compact_summary(inbound)), None, inbound, body_size)
        if inbound.json_schema is not None:
            text = json.dumps(sample_for_schema(inbound.json_schema, inbound))
            return _render(Answer(text=text), None, inbound, body_size)
        return _render(self.scenario.default, None, inbound, body_size)

    def _matches(self, rule: Rule, inbound: Inbound) -> bool:
        if rule.when_kind != "any" and rule.when_kind != inbound.kind:
            return False
        if rule.agent is not None and not _glob(inbound.agent, rule.agent):
            return False
        if rule.session_id is not None and not _glob(inbound.session_id, rule.session_id):
            return False
        if (
            rule.when_user_contains is not None
            and rule.when_user_contains not in inbound.latest_user_text
        ):
            return False
        if rule.when_user_regex is not None and not self._regex[rule.when_user_regex].search(
            inbound.latest_user_text
        ):
            return False
        if (
            rule.when_system_contains is not None
            and rule.when_system_contains not in inbound.system_text
        ):
            return False
        if rule.when_tool_result_for is not None or rule.when_tool_result_contains is not None:
            return any(
                (rule.when_tool_result_for is None or _glob(result.name, rule.when_tool_result_for))
                and (
                    rule.when_tool_result_contains is None
                    or rule.when_tool_result_contains in result.text
                )
                for result in inbound.tool_results
            )
        return True


def _glob(value: str | None, pattern: str) -> bool:
    return value is not None and fnmatch.fnmatchcase(value, pattern)


def _render(answer: Answer, rule_id: str | None, inbound: Inbound, body_size: int) -> Decision:
    pacing = {"delay": answer.delay_ms / 1000, "chunk_delay": answer.chunk_delay_ms / 1000}
    if answer.error is not None:
        error = answer.error.model_copy(update={"message": fill(answer.error.message, inbound)})
        return Decision(rule_id=rule_id, message=None, error=error, **pacing)
    content = tuple(_content_block(block, inbound) for block in answer.blocks())
    has_tool_use = any(block["type"] == "tool_use" for block in content)
    spec = answer.usage
    output_chars = len(json.dumps(list(content)))
    usage = sse.Usage(
        input_tokens=spec.input_tokens if spec.input_tokens is not None else max(1, body_size // 4),
        output_tokens=spec.output_tokens
        if spec.output_tokens is not None
        else max(1, output_chars // 4),
        cache_read_input_tokens=spec.cache_read_input_tokens,
        cache_creation_input_tokens=spec.cache_creation_input_tokens,
    )
    message = sse.Message(
        id=f"msg_sim_{uuid.uuid4().hex[:24]}",
        model=inbound.model,
        content=content,
        stop_reason=answer.stop_reason or ("tool_use" if has_tool_use else "end_turn"),
        usage=usage,
    )
    return Decision(rule_id=rule_id, message=message, error=None, **pacing)


def _content_block(
    block: TextBlock | ToolUseBlock | ThinkingBlock, inbound: Inbound
) -> dict[str, Any]:
    if isinstance(block, TextBlock):
        return {"type": "text", "text": fill(block.text, inbound)}
    if isinstance(block, ThinkingBlock):
        thinking = fill(block.thinking, inbound)
        digest = hashlib.sha256(thinking.encode()).digest()
        signature = base64.b64encode(b"hyperhive-sim:" + digest).decode()
        return {"type": "thinking", "thinking": thinking, "signature": signature}
    return {
        "type": "tool_use",
        "id": block.id or f"toolu_sim_{uuid.uuid4().hex[:24]}",
        "name": block.name,
        "input": _fill_json(block.input, inbound),
    }


def fill(text: str, inbound: Inbound) -> str:
    """Replace the known `{placeholder}`s in `text`."""
    values = {
        "agent": inbound.agent or "",
        "session_id": inbound.session_id or "",
        "user_text": inbound.latest_user_text,
        "tool_result": inbound.tool_result_text,
    }
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


def _fill_json(value: Any, inbound: Inbound) -> Any:
    if isinstance(value, str):
        return fill(value, inbound)
    if isinstance(value, list):
        return [_fill_json(item, inbound) for item in value]
    if isinstance(value, dict):
        return {key: _fill_json(item, inbound) for key, item in value.items()}
    return value


def compact_summary(inbound: Inbound) -> str:
    """The built-in answer to a compaction request: the user's earlier messages, abridged.

    The last user text is the summarisation prompt itself, so it is left out.
    """
    earlier = [t for t in inbound.user_texts[:-1] if t][-_SUMMARY_ITEMS:]
    lines = [f"- {_abridge(text)}" for text in earlier] or ["- (none)"]
    who = f" of agent {inbound.agent}" if inbound.agent else ""
    return (
        "<analysis>\nScripted summary written by hyperhive.sim (no real model).\n</analysis>\n\n"
        f"<summary>\n1. Primary Request and Intent:\n   Scripted conversation{who}.\n\n"
        "6. All user messages:\n" + "\n".join(f"   {line}" for line in lines) + "\n\n"
        "8. Current Work:\n   Waiting for the next message.\n</summary>"
    )


def _abridge(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _SUMMARY_CHARS else flat[: _SUMMARY_CHARS - 1] + "…"


def sample_for_schema(schema: Mapping[str, Any], inbound: Inbound) -> Any:
    """A small value that satisfies a JSON schema (objects, arrays, scalars, enums, const)."""
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    for combinator in ("anyOf", "oneOf", "allOf"):
        options = schema.get(combinator)
        if isinstance(options, list) and options and isinstance(options[0], dict):
            return sample_for_schema(options[0], inbound)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties")
        props = props if isinstance(props, dict) else {}
        return {
            key: sample_for_schema(sub if isinstance(sub, dict) else {}, inbound)
            for key, sub in props.items()
        }
    if kind == "array":
        return []
    if kind in ("integer", "number"):
        return 0
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    return "Scripted session" if inbound.kind == "title" else "scripted"
