"""Claude Code's stream-json output as typed events, and how a turn ended.

`parse_line` turns one stdout line of `claude -p --output-format stream-json --verbose` (or the
stdin lines a harness sends in `--input-format stream-json` mode) into events; `classify` reads
the `result` line (or its absence) as a `TurnOutcome`; `TurnTally` sums a turn up.

Invariants:
- Pure: no I/O, no clock, no logging side effects.
- `parse_line` never raises. Unknown `type`s, unknown subtypes, missing fields and fields of the
  wrong type give an `Unknown` event (which keeps the raw dict) or a typed event with neutral
  defaults (`""`, `0`, `None`). Text that is not a JSON object gives an `Unknown` whose `raw` is
  empty and whose `text` holds the line, so a harness can log it and carry on: a stray line on
  stdout must never end a turn.
- Key order is never relied upon.
- One event per content block: an assistant line holding a text and a tool_use block yields
  `[AssistantText, AssistantToolUse]`, in block order. Every line yields at least one event.
- API failures arrive as `subtype: "success"` with `is_error: true`: `classify` reads `is_error`,
  `terminal_reason` and `api_error_status`, never `subtype` alone.
- `Result.total_cost_usd` is what the CLI reports: cumulative over a session continued with
  `--continue`. The cost of this invocation alone is `Result.turn_cost_usd` (summed from
  `model_usage_since_last_result`), when the CLI reports it.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from hyperhive.harness.streamevents import (
    ApiRetry,
    AssistantText,
    AssistantThinking,
    AssistantToolUse,
    CompactBoundary,
    ControlRequest,
    ControlResponse,
    Event,
    JsonDict,
    McpServerStatus,
    Partial,
    PermissionDenial,
    PermissionDenied,
    RateLimit,
    Result,
    StreamLine,
    SystemInit,
    SystemStatus,
    TaskEvent,
    ToolResult,
    Unknown,
    Usage,
    UserText,
)

# -- parsing --------------------------------------------------------------------------------


def parse_stream_line(text: str | bytes) -> StreamLine:
    """Decode one line and parse it; never raises (see the module invariants)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    stripped = text.strip()
    try:
        decoded = json.loads(stripped)
    except ValueError as exc:
        reason = "empty line" if not stripped else f"not JSON: {exc}"
        return StreamLine({}, (Unknown({}, text=text, reason=reason),))
    if not isinstance(decoded, dict):
        reason = f"not a JSON object: {type(decoded).__name__}"
        return StreamLine({}, (Unknown({}, text=text, reason=reason),))
    return StreamLine(decoded, tuple(parse_line(decoded)))


def parse_line(line: str | bytes | Mapping[str, Any]) -> list[Event]:
    """The events of one stream-json line (a decoded dict or its text); never raises."""
    if not isinstance(line, Mapping):
        return list(parse_stream_line(line).events)
    raw = dict(line)
    try:
        events = _dispatch(raw)
    except Exception as exc:  # a parser bug must not end a turn; keep the line instead
        return [Unknown(raw, reason=f"parse error: {type(exc).__name__}: {exc}")]
    return events or [Unknown(raw, reason="no content blocks")]


def parse_lines(lines: Iterable[str | bytes | Mapping[str, Any]]) -> list[Event]:
    """All events of several lines, in order."""
    return [event for line in lines for event in parse_line(line)]


def _partial(event: JsonDict) -> Partial:
    """One raw API stream event; only what a page shows as live text is kept."""
    etype = event.get("type")
    if etype == "message_start":
        return Partial("message_start", message_id=_str(_dict(event, "message"), "id"))
    if etype == "content_block_delta":
        delta = _dict(event, "delta")
        index = event.get("index")
        index = index if isinstance(index, int) else 0
        if delta.get("type") == "text_delta":
            return Partial("text", _str(delta, "text"), index)
        if delta.get("type") == "thinking_delta":
            return Partial("thinking", _str(delta, "thinking"), index)
    return Partial("other")


def _dispatch(raw: JsonDict) -> list[Event]:
    kind = raw.get("type")
    if kind == "assistant":
        return _assistant(raw)
    if kind == "user":
        return _user(raw)
    if kind == "system":
        return [_system(raw)]
    if kind == "result":
        return [_result(raw)]
    if kind == "stream_event":
        return [_partial(_dict(raw, "event"))]
    if kind == "rate_limit_event":
        info = _dict(raw, "rate_limit_info")
        return [
            RateLimit(
                status=_str(info, "status"),
                resets_at=_opt_int(info, "resetsAt"),
                rate_limit_type=_opt_str(info, "rateLimitType"),
                utilization=_opt_float(info, "utilization"),
            )
        ]
    if kind == "control_request":
        request = _dict(raw, "request")
        return [ControlRequest(_str(raw, "request_id"), _str(request, "subtype"), request)]
    if kind == "control_response":
        response = _dict(raw, "response")
        return [
            ControlResponse(
                request_id=_str(response, "request_id"),
                subtype=_str(response, "subtype"),
                response=_dict(response, "response"),
                error=_opt_str(response, "error"),
            )
        ]
    return [Unknown(raw, reason=f"unknown line type {kind!r}")]


def _assistant(raw: JsonDict) -> list[Event]:
    message = _dict(raw, "message")
    message_id = _str(message, "id")
    parent = _opt_str(raw, "parent_tool_use_id")
    error = _opt_str(raw, "error")
    events: list[Event] = []
    for block in _blocks(message):
        kind = block.get("type")
        if kind == "text":
            events.append(AssistantText(_str(block, "text"), message_id, parent, error))
        elif kind in ("tool_use", "server_tool_use"):
            events.append(
                AssistantToolUse(
                    _str(block, "id"),
                    _str(block, "name"),
                    _dict(block, "input"),
                    message_id,
                    parent,
                )
            )
        elif kind in ("thinking", "redacted_thinking"):
            events.append(AssistantThinking(_str(block, "thinking"), message_id))
        else:
            events.append(Unknown(raw, reason=f"unknown assistant block {kind!r}"))
    return events


def _user(raw: JsonDict) -> list[Event]:
    message = _dict(raw, "message")
    replay = raw.get("isReplay") is True
    content = message.get("content")
    if isinstance(content, str):
        return [UserText(content, replay)]
    events: list[Event] = []
    for block in _blocks(message):
        kind = block.get("type")
        if kind == "tool_result":
            events.append(
                ToolResult(
                    _str(block, "tool_use_id"),
                    _content_text(block.get("content")),
                    block.get("is_error") is True,
                )
            )
        elif kind == "text":
            events.append(UserText(_str(block, "text"), replay))
        else:
            events.append(Unknown(raw, reason=f"unknown user block {kind!r}"))
    return events


def _system(raw: JsonDict) -> Event:
    subtype = raw.get("subtype")
    if subtype == "init":
        servers = tuple(
            McpServerStatus(_str(s, "name"), _str(s, "status"))
            for s in _list(raw, "mcp_servers")
            if isinstance(s, dict)
        )
        return SystemInit(
            session_id=_str(raw, "session_id"),
            model=_str(raw, "model"),
            tools=tuple(t for t in _list(raw, "tools") if isinstance(t, str)),
            mcp_servers=servers,
            version=_str(raw, "claude_code_version"),
            cwd=_str(raw, "cwd"),
            permission_mode=_str(raw, "permissionMode"),
        )
    if subtype == "status":
        return SystemStatus(_opt_str(raw, "status"), _opt_str(raw, "compact_result"))
    if subtype == "api_retry":
        return ApiRetry(
            attempt=_int(raw, "attempt"),
            max_retries=_int(raw, "max_retries"),
            retry_delay_ms=_int(raw, "retry_delay_ms"),
            error_status=_opt_int(raw, "error_status"),
            error=_str(raw, "error"),
        )
    if subtype == "compact_boundary":
        meta = _dict(raw, "compact_metadata")
        return CompactBoundary(
            _str(meta, "trigger"), _int(meta, "pre_tokens"), _int(meta, "post_tokens")
        )
    if subtype == "permission_denied":
        return PermissionDenied(
            _str(raw, "tool_name"), _str(raw, "tool_use_id"), _str(raw, "message")
        )
    if subtype in ("task_started", "task_progress", "task_updated", "task_notification"):
        status = _opt_str(raw, "status") or _opt_str(_dict(raw, "patch"), "status")
        return TaskEvent(
            subtype=subtype,
            task_id=_str(raw, "task_id"),
            status=status,
            description=_str(raw, "description"),
            summary=_str(raw, "summary"),
        )
    return Unknown(raw, reason=f"unknown system subtype {subtype!r}")


def _result(raw: JsonDict) -> Result:
    usage = _dict(raw, "usage")
    denials = tuple(
        PermissionDenial(_str(d, "tool_name"), _str(d, "tool_use_id"), _dict(d, "tool_input"))
        for d in _list(raw, "permission_denials")
        if isinstance(d, dict)
    )
    return Result(
        subtype=_str(raw, "subtype"),
        is_error=raw.get("is_error") is True,
        result=_opt_str(raw, "result"),
        session_id=_str(raw, "session_id"),
        api_error_status=_opt_int(raw, "api_error_status"),
        terminal_reason=_opt_str(raw, "terminal_reason"),
        stop_reason=_opt_str(raw, "stop_reason"),
        num_turns=_int(raw, "num_turns"),
        duration_ms=_int(raw, "duration_ms"),
        duration_api_ms=_int(raw, "duration_api_ms"),
        total_cost_usd=_opt_float(raw, "total_cost_usd") or 0.0,
        turn_cost_usd=_turn_cost(raw),
        usage=Usage(
            input_tokens=_int(usage, "input_tokens"),
            output_tokens=_int(usage, "output_tokens"),
            cache_read_tokens=_int(usage, "cache_read_input_tokens"),
            cache_creation_tokens=_int(usage, "cache_creation_input_tokens"),
        ),
        permission_denials=denials,
        errors=tuple(e for e in _list(raw, "errors") if isinstance(e, str)),
        local_command=_opt_str(raw, "local_command"),
    )


def _turn_cost(raw: JsonDict) -> float | None:
    per_model = raw.get("model_usage_since_last_result")
    if not isinstance(per_model, dict):
        return None
    costs = [_opt_float(m, "costUSD") for m in per_model.values() if isinstance(m, dict)]
    return sum(c for c in costs if c is not None)


def _content_text(content: Any) -> str:
    """A tool_result's content (a string or a list of blocks) as one text."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts: list[str] = []
        for block in content:
            if isinstance(block, dict) and block.get("type") == "text":
                parts.append(_str(block, "text"))
            elif isinstance(block, dict):
                parts.append(f"[{block.get('type', 'block')}]")
            else:
                parts.append(str(block))
        return "\n".join(parts)
    return json.dumps(content)


def _blocks(message: JsonDict) -> list[JsonDict]:
    return [b for b in _list(message, "content") if isinstance(b, dict)]


# Lenient field readers: a wrong type reads as the neutral default, never raises.


def _str(d: Mapping[str, Any], key: str) -> str:
    value = d.get(key)
    return value if isinstance(value, str) else ""


def _opt_str(d: Mapping[str, Any], key: str) -> str | None:
    value = d.get(key)
    return value if isinstance(value, str) else None


def _opt_int(d: Mapping[str, Any], key: str) -> int | None:
    value = d.get(key)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _int(d: Mapping[str, Any], key: str) -> int:
    value = _opt_int(d, key)
    return 0 if value is None else value


def _opt_float(d: Mapping[str, Any], key: str) -> float | None:
    value = d.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _dict(d: Mapping[str, Any], key: str) -> JsonDict:
    value = d.get(key)
    return value if isinstance(value, dict) else {}


def _list(d: Mapping[str, Any], key: str) -> list[Any]:
    value = d.get(key)
    return value if isinstance(value, list) else []


# -- outcome --------------------------------------------------------------------------------


class OutcomeKind(StrEnum):
    """How a turn ended; the values are the stored strings."""

    OK = "ok"
    FAILED = "failed"
    PROMPT_TOO_LONG = "prompt_too_long"
    RATE_LIMITED = "rate_limited"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class TurnOutcome:
    """`kind` plus a one-line human note (empty when ok)."""

    kind: OutcomeKind
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.kind is OutcomeKind.OK


# terminal_reason values the CLI itself files under "context limit" (stop, compact first).
_CONTEXT_LIMIT = frozenset({"prompt_too_long", "blocking_limit", "rapid_refill_breaker"})
# terminal_reason values of a turn stopped by an interrupt.
_ABORTED = frozenset({"aborted_streaming", "aborted_tools"})
_RATE_LIMIT_TEXT = re.compile(
    r"\b429\b|rate[ _-]?limit|usage limit|hit your limit|too many requests", re.IGNORECASE
)
_SUBTYPE_NOTES = {
    "error_max_turns": "reached the --max-turns limit",
    "error_max_budget_usd": "reached the --max-budget-usd limit",
    "error_during_execution": "error during execution",
}
_NOTE_MAX = 500


def classify(
    result: Result | None,
    stderr_tail: str = "",
    *,
    exit_code: int | None = None,
    interrupted: bool = False,
) -> TurnOutcome:
    """Judge one `claude -p` invocation from its last `result` line (None: it printed none).

    - no result: `cancelled` (SIGINT exits 0 without one, SIGTERM 143); but when the caller
      knows the CLI exited on its own with a failure code (`exit_code` not 0, not a signal,
      not `interrupted`), `failed` with the stderr tail as note (e.g. a bad flag).
    - `is_error` false and subtype "success": `ok`.
    - terminal_reason aborted_streaming / aborted_tools: `cancelled`.
    - context limit (terminal_reason prompt_too_long, blocking_limit, rapid_refill_breaker, or
      "Prompt is too long" text): `prompt_too_long`.
    - HTTP 429 or rate/usage-limit text: `rate_limited`.
    - anything else (401, no login, unreachable, max turns, max budget, ...): `failed`.
    """
    tail = _last_lines(stderr_tail)
    if result is None:
        if not interrupted and exit_code is not None and _is_failure_exit(exit_code):
            note = f"claude exited with code {exit_code} without a result"
            return TurnOutcome(OutcomeKind.FAILED, _join(note, tail))
        why = "interrupted" if interrupted else "stream ended without a result"
        if exit_code is not None:
            why = f"{why} (exit code {exit_code})"
        return TurnOutcome(OutcomeKind.CANCELLED, _join(why, tail))
    if not result.is_error and result.subtype == "success":
        return TurnOutcome(OutcomeKind.OK)
    text = (result.result or "").strip()
    if result.terminal_reason in _ABORTED:
        return TurnOutcome(OutcomeKind.CANCELLED, f"interrupted ({result.terminal_reason})")
    if result.terminal_reason in _CONTEXT_LIMIT or "prompt is too long" in text.lower():
        return TurnOutcome(OutcomeKind.PROMPT_TOO_LONG, _clip(text or "prompt is too long"))
    if result.api_error_status == 429 or _RATE_LIMIT_TEXT.search(text):
        return TurnOutcome(OutcomeKind.RATE_LIMITED, _clip(text or "rate limited (HTTP 429)"))
    note = text or "; ".join(result.errors) or _SUBTYPE_NOTES.get(result.subtype, "")
    if not note:
        note = f"{result.subtype or 'error'} ({result.terminal_reason or 'no reason given'})"
    if result.api_error_status is not None and str(result.api_error_status) not in note:
        note = f"{note} (HTTP {result.api_error_status})"
    return TurnOutcome(OutcomeKind.FAILED, _clip(note))


def _is_failure_exit(code: int) -> bool:
    # 0: SIGINT's clean exit. Negative: killed by a signal (asyncio). 128+N: a shell-style
    # signal exit (143 = SIGTERM, 130 = SIGINT).
    return code > 0 and not 128 < code < 160


def _last_lines(text: str, count: int = 3) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " | ".join(lines[-count:])


def _join(note: str, tail: str) -> str:
    return _clip(f"{note}: {tail}" if tail else note)


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _NOTE_MAX else text[: _NOTE_MAX - 1] + "…"


# -- tally ----------------------------------------------------------------------------------


class TurnTally:
    """Feed it one invocation's events; it counts tool calls per tool name and keeps the results.

    One `claude -p` run can print several results: after the first, the CLI waits for its
    background tasks and answers each completion with another model turn and result. The last
    result decides the outcome; usage and this-invocation cost are summed over all of them
    (each result reports only its own part)."""

    def __init__(self) -> None:
        self.tool_calls: dict[str, int] = {}
        self.tool_errors = 0
        self.permission_denied = 0
        self.api_retries = 0
        self.compactions = 0
        self.init: SystemInit | None = None
        self.results: list[Result] = []
        self.rate_limit: RateLimit | None = None

    def feed(self, event: Event) -> None:
        if isinstance(event, AssistantToolUse):
            self.tool_calls[event.name] = self.tool_calls.get(event.name, 0) + 1
        elif isinstance(event, ToolResult):
            self.tool_errors += 1 if event.is_error else 0
        elif isinstance(event, PermissionDenied):
            self.permission_denied += 1
        elif isinstance(event, ApiRetry):
            self.api_retries += 1
        elif isinstance(event, CompactBoundary):
            self.compactions += 1
        elif isinstance(event, SystemInit):
            if self.init is None:
                self.init = event
        elif isinstance(event, Result):
            self.results.append(event)
        elif isinstance(event, RateLimit):
            self.rate_limit = event

    def feed_all(self, events: Iterable[Event]) -> None:
        for event in events:
            self.feed(event)

    @property
    def result(self) -> Result | None:
        """The last result, the one that says how the invocation ended."""
        return self.results[-1] if self.results else None

    @property
    def total_tool_calls(self) -> int:
        return sum(self.tool_calls.values())

    @property
    def session_id(self) -> str | None:
        result = self.result
        if result is not None and result.session_id:
            return result.session_id
        return self.init.session_id if self.init is not None else None

    @property
    def usage(self) -> Usage | None:
        """Token usage summed over the results; None without any."""
        if not self.results:
            return None
        return Usage(
            input_tokens=sum(r.usage.input_tokens for r in self.results),
            output_tokens=sum(r.usage.output_tokens for r in self.results),
            cache_read_tokens=sum(r.usage.cache_read_tokens for r in self.results),
            cache_creation_tokens=sum(r.usage.cache_creation_tokens for r in self.results),
        )

    @property
    def total_cost_usd(self) -> float | None:
        """As reported by the last result: cumulative over a continued session."""
        result = self.result
        return result.total_cost_usd if result is not None else None

    @property
    def turn_cost_usd(self) -> float | None:
        """This invocation's cost, when the CLI reports it per result."""
        costs = [r.turn_cost_usd for r in self.results if r.turn_cost_usd is not None]
        return sum(costs) if costs else None


async def read_stream_lines(
    reader: asyncio.StreamReader, chunk: int = 1 << 16
) -> AsyncIterator[StreamLine]:
    """Every non-blank line the CLI writes to `reader`, parsed, until EOF (a last line without
    its newline included). Chunked reads: a line may be longer than the reader's limit."""
    buffer = b""
    while True:
        data = await reader.read(chunk)
        if not data:
            break
        buffer += data
        *complete, buffer = buffer.split(b"\n")
        for raw_line in complete:
            if raw_line.strip():
                yield parse_stream_line(raw_line)
    if buffer.strip():
        yield parse_stream_line(buffer)
