"""Scenario files for the scripted model server: pure, validated data, no I/O but `load`.

A scenario is an ordered list of rules plus a default answer. Each rule is a set of conditions
on the incoming request (all must hold) and one answer: reply content blocks, or an HTTP error.

Invariants:
- Unknown keys anywhere are refused; `Scenario.load` raises `ConfigError` naming the dotted key.
- Every rule has a unique `id` after validation (`rule-N`, 1-based, when the file gives none).
- `when_user_regex` compiles; an answer has at most one of `text`, `reply`, `error`.
- `when_kind` defaults to `"main"`: a rule never answers a compaction or title request unless it
  asks for that kind explicitly (the server has built-in answers for those).
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hyperhive.config import format_validation_error
from hyperhive.errors import ConfigError

RequestKind = Literal["main", "compact", "title"]
"""What a request is for: the agent loop, a `/compact` summary, or a session-title side call."""

StopReason = Literal["end_turn", "tool_use", "max_tokens", "stop_sequence", "pause_turn", "refusal"]

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TextBlock(_Strict):
    """Plain assistant text."""

    type: Literal["text"]
    text: str


class ToolUseBlock(_Strict):
    """A tool call; `id` is generated per request unless given."""

    type: Literal["tool_use"]
    name: str = Field(min_length=1)
    input: dict[str, Any] = Field(default_factory=dict)
    id: str | None = None


class ThinkingBlock(_Strict):
    """Extended thinking, streamed as `thinking_delta`s followed by a `signature_delta`."""

    type: Literal["thinking"]
    thinking: str


Block = Annotated[TextBlock | ToolUseBlock | ThinkingBlock, Field(discriminator="type")]


class UsageSpec(_Strict):
    """Token figures to report. `None` means estimated (about 4 characters per token)."""

    input_tokens: int | None = Field(default=None, ge=0)
    output_tokens: int | None = Field(default=None, ge=0)
    cache_read_input_tokens: int = Field(default=0, ge=0)
    cache_creation_input_tokens: int = Field(default=0, ge=0)


class ErrorSpec(_Strict):
    """Answer with an HTTP error carrying Anthropic's error body instead of a message."""

    status: int = Field(ge=400, le=599)
    type: str | None = None  # derived from `status` when absent
    message: str
    retry_after: float | None = Field(default=None, ge=0)  # the `retry-after` header, seconds

    @property
    def error_type(self) -> str:
        if self.type is not None:
            return self.type
        return _ERROR_TYPES.get(
            self.status, "api_error" if self.status >= 500 else "invalid_request_error"
        )


class Answer(_Strict):
    """What to send back: `text` (shorthand), `reply` blocks, or `error`; plus timing and usage."""

    text: str | None = None
    reply: list[Block] = Field(default_factory=list)
    error: ErrorSpec | None = None
    usage: UsageSpec = Field(default_factory=UsageSpec)
    stop_reason: StopReason | None = None
    delay_ms: int = Field(default=0, ge=0)
    chunk_delay_ms: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _one_kind_of_answer(self) -> Self:
        given = [
            name
            for name, present in (
                ("text", self.text is not None),
                ("reply", bool(self.reply)),
                ("error", self.error is not None),
            )
            if present
        ]
        if len(given) > 1:
            raise ValueError(f"give only one of text, reply, error (got {', '.join(given)})")
        return self

    def blocks(self) -> list[TextBlock | ToolUseBlock | ThinkingBlock]:
        """The reply content; `text` becomes one text block, nothing at all becomes "ok"."""
        if self.reply:
            return list(self.reply)
        text = "ok" if self.text is None else self.text
        return [TextBlock(type="text", text=text)]


class Rule(Answer):
    """Conditions (all must hold; an absent one always holds) and the answer they select."""

    id: str | None = Field(default=None, min_length=1)
    agent: str | None = None  # exact name or fnmatch glob
    session_id: str | None = None  # exact id or fnmatch glob of `x-claude-code-session-id`
    when_kind: RequestKind | Literal["any"] = "main"
    when_compact: bool | None = None  # shorthand: true = when_kind "compact", false = "main"
    when_user_contains: str | None = None
    when_user_regex: str | None = None
    when_tool_result_for: str | None = None  # tool name or fnmatch glob
    when_tool_result_contains: str | None = None
    when_system_contains: str | None = None
    times: int = Field(default=0, ge=0)  # 0 = unlimited

    @field_validator("when_user_regex")
    @classmethod
    def _regex_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from exc
        return value

    @model_validator(mode="after")
    def _compact_shorthand(self) -> Self:
        if self.when_compact is None:
            return self
        kind: RequestKind = "compact" if self.when_compact else "main"
        if "when_kind" in self.model_fields_set and self.when_kind != kind:
            raise ValueError(
                f"when_compact = {str(self.when_compact).lower()} contradicts when_kind"
            )
        object.__setattr__(self, "when_kind", kind)
        return self


class Scenario(_Strict):
    """A whole script: `default` answers anything no rule matches (default: text "ok")."""

    description: str = ""
    default: Answer = Field(default_factory=Answer)
    rules: list[Rule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _rule_ids(self) -> Self:
        seen: set[str] = set()
        named: list[Rule] = []
        for number, rule in enumerate(self.rules, start=1):
            rule_id = rule.id or f"rule-{number}"
            if rule_id in seen:
                raise ValueError(f"duplicate rule id {rule_id!r}")
            seen.add(rule_id)
            if rule.id is None:
                rule = rule.model_copy(update={"id": rule_id})
            named.append(rule)
        object.__setattr__(self, "rules", named)
        return self

    @classmethod
    def load(cls, path: str | Path) -> Scenario:
        """Read a `.toml` or `.json` scenario; any problem is a `ConfigError` naming the file."""
        path = Path(path)
        try:
            raw = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read scenario: {exc.strerror or exc}") from exc
        return cls.parse(raw, fmt=path.suffix.lstrip(".").lower(), source=str(path))

    @classmethod
    def parse(cls, text: str, *, fmt: str = "toml", source: str = "scenario") -> Scenario:
        """Parse scenario text in `fmt` ("toml" or "json")."""
        data: Any
        if fmt == "toml":
            try:
                data = tomllib.loads(text)
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(f"{source}: not valid TOML: {exc}") from exc
        elif fmt == "json":
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{source}: not valid JSON: {exc}") from exc
        else:
            raise ConfigError(f"{source}: scenario files end in .toml or .json")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(format_validation_error(source, exc)) from exc
