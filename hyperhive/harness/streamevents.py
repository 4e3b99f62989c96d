"""Claude Code's stream-json events as typed values (pure: no I/O, imports nothing of ours).

One frozen dataclass per kind of line or content block the CLI writes; `Event` is their union
and `StreamLine` one decoded line with its events; `event_kind` / `event_payload` are how an
event is published on the harness's bus (stable kind names that pages switch on). The parser that builds them from the CLI's
output is `stream.py`; what each field means is documented there and in
`/work/shared/reference/` (the CLI's behaviour).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, NamedTuple

JsonDict = dict[str, Any]

# -- events ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class McpServerStatus:
    """One MCP server as the CLI saw it at start-up: status `connected | pending | failed`."""

    name: str
    status: str


@dataclass(frozen=True)
class SystemInit:
    """The first line of a run (`system/init`)."""

    session_id: str
    model: str
    tools: tuple[str, ...]
    mcp_servers: tuple[McpServerStatus, ...]
    version: str  # claude_code_version
    cwd: str = ""
    permission_mode: str = ""

    def mcp_status(self, name: str) -> str | None:
        """The start-up status of MCP server `name`, or None when it is not configured."""
        for server in self.mcp_servers:
            if server.name == name:
                return server.status
        return None


@dataclass(frozen=True)
class AssistantText:
    """A text block of the model's answer. `error` is set on the CLI's synthetic API-error
    messages (`authentication_failed`, `rate_limit`, ...)."""

    text: str
    message_id: str = ""
    parent_tool_use_id: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class AssistantToolUse:
    """A tool call by the model (built-in or `mcp__<server>__<tool>`)."""

    id: str
    name: str
    input: JsonDict
    message_id: str = ""
    parent_tool_use_id: str | None = None


@dataclass(frozen=True)
class AssistantThinking:
    """An extended-thinking block."""

    thinking: str
    message_id: str = ""


@dataclass(frozen=True)
class ToolResult:
    """What a tool call returned (a `tool_result` block of a `user` line), as text."""

    tool_use_id: str
    content: str
    is_error: bool = False


@dataclass(frozen=True)
class UserText:
    """Text in a `user` line: a prompt sent on stdin, "[Request interrupted by user]", a
    compaction summary or local command output (`replay` is the line's `isReplay`)."""

    text: str
    replay: bool = False


@dataclass(frozen=True)
class SystemStatus:
    """`system/status`: `status` is e.g. "requesting" or "compacting", None when it clears."""

    status: str | None
    compact_result: str | None = None


@dataclass(frozen=True)
class ApiRetry:
    """`system/api_retry`: the CLI will retry a failed API call."""

    attempt: int
    max_retries: int
    retry_delay_ms: int
    error_status: int | None
    error: str


@dataclass(frozen=True)
class CompactBoundary:
    """`system/compact_boundary`: history before this point was summarised."""

    trigger: str  # "manual" (/compact) or "auto"
    pre_tokens: int
    post_tokens: int


@dataclass(frozen=True)
class PermissionDenied:
    """`system/permission_denied`: a tool call was refused by the permission rules."""

    tool_name: str
    tool_use_id: str
    message: str


@dataclass(frozen=True)
class TaskEvent:
    """`system/task_*`: a background task (a `run_in_background` shell, a helper) started,
    progressed, changed (`status` e.g. "completed") or finished (`summary`)."""

    subtype: str
    task_id: str
    status: str | None = None
    description: str = ""
    summary: str = ""


@dataclass(frozen=True)
class RateLimit:
    """`rate_limit_event` (subscription logins): status `allowed | allowed_warning | rejected`."""

    status: str
    resets_at: int | None = None
    rate_limit_type: str | None = None
    utilization: float | None = None


@dataclass(frozen=True)
class ControlRequest:
    """A `control_request` (CLI → harness, e.g. `can_use_tool`; or harness → CLI on stdin)."""

    request_id: str
    subtype: str
    request: JsonDict


@dataclass(frozen=True)
class ControlResponse:
    """A `control_response`; `subtype` is "success" or "error" (then `error` says why)."""

    request_id: str
    subtype: str
    response: JsonDict
    error: str | None = None


@dataclass(frozen=True)
class Usage:
    """Token counts, summed over the API calls of one invocation."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_creation_tokens: int = 0


@dataclass(frozen=True)
class PermissionDenial:
    """One entry of `result.permission_denials`."""

    tool_name: str
    tool_use_id: str
    tool_input: JsonDict


@dataclass(frozen=True)
class Result:
    """The last line of a run. Read `is_error`, not `subtype`: API errors say "success"."""

    subtype: str
    is_error: bool
    result: str | None
    session_id: str
    api_error_status: int | None = None
    terminal_reason: str | None = None
    stop_reason: str | None = None
    num_turns: int = 0
    duration_ms: int = 0
    duration_api_ms: int = 0
    total_cost_usd: float = 0.0
    turn_cost_usd: float | None = None
    usage: Usage = field(default_factory=Usage)
    permission_denials: tuple[PermissionDenial, ...] = ()
    errors: tuple[str, ...] = ()
    local_command: str | None = None  # e.g. "compact" for a `/compact` run


@dataclass(frozen=True)
class Partial:
    """A `stream_event` line (only with `--include-partial-messages`): the raw API stream.
    `kind` is `message_start` (`message_id` set), `text` / `thinking` (a delta of content block
    `index`: `text` is the piece) or `other` (block starts and stops, signatures, tool input,
    usage: nothing a page shows)."""

    kind: str
    text: str = ""
    index: int = 0
    message_id: str = ""


@dataclass(frozen=True)
class Unknown:
    """Anything else: an unmodelled line type or block, or text that is not a JSON object."""

    raw: JsonDict
    text: str | None = None  # the line itself when it is not a JSON object
    reason: str = ""


Event = (
    SystemInit
    | AssistantText
    | AssistantToolUse
    | AssistantThinking
    | ToolResult
    | UserText
    | SystemStatus
    | ApiRetry
    | CompactBoundary
    | PermissionDenied
    | TaskEvent
    | RateLimit
    | ControlRequest
    | ControlResponse
    | Result
    | Partial
    | Unknown
)


class StreamLine(NamedTuple):
    """One line as read: the decoded object (empty when the line is not a JSON object; the
    text is then in the `Unknown` event) and its events. Unpacks as `raw, events`."""

    raw: JsonDict
    events: tuple[Event, ...]


# -- on the bus -----------------------------------------------------------------------------

_BUS_KINDS = {
    "SystemInit": "session_init",
    "AssistantText": "text",
    "AssistantToolUse": "tool_use",
    "AssistantThinking": "thinking",
    "ToolResult": "tool_result",
    "UserText": "user_text",
    "SystemStatus": "status",
    "ApiRetry": "api_retry",
    "CompactBoundary": "compact_boundary",
    "PermissionDenied": "permission_denied",
    "RateLimit": "rate_limit",
    "ControlRequest": "control_request",
    "ControlResponse": "control_response",
    "Result": "result",
    "TaskEvent": "task",
    "Unknown": "unknown",
}


def event_kind(ev: Event) -> str:
    """Stable event kind names for the bus (what pages switch on)."""
    return _BUS_KINDS.get(type(ev).__name__, type(ev).__name__.lower())


def event_payload(ev: Event) -> dict[str, Any]:
    """The event's fields as the bus carries them (`raw` only for an unknown line)."""
    data = dataclasses.asdict(ev) if dataclasses.is_dataclass(ev) else {}
    if type(ev).__name__ != "Unknown":
        data.pop("raw", None)
    return data
