"""Wire types for tool permissions asked of the operator. Pure types (pydantic), registered
with `@verb`; no I/O.

Agent socket: `ask_permission` — the harness's `PermissionGate` asks whether the model may
use a tool; the request parks until the operator decides or the request expires, and answers
the decision. Resending it with the same `key` (the client's retry after a lost connection)
joins the same request instead of asking twice.
Host socket: `permissions` (pending requests, oldest first) and `decide_permission`.

A request row: `id` (ascending = oldest first), `agent`, `tool`, `input` (the tool's input as
the model wrote it; long strings shortened by the harness for display), optional
`tool_use_id`, `reason` (why the CLI asked, when it says), `rule` (the `ask_operator_for`
pattern that matched), `asked_at`, `deadline_at`, `status`, optional `decided_at`, `note`
(what the model sees on a denial), `kept_rule` (the rule an "allow always" kept).
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from hyperhive.wire.base import Request, Response, verb

TOOL_MAX = 200
INPUT_JSON_MAX = 256 * 1024  # bytes of the input as JSON
REASON_MAX = 2000
NOTE_MAX = 2000
KEY_MAX = 200
EXPIRED = "[expired]"
DROPPED = "[dropped: the agent restarted]"
DENIED = "denied by the operator"
WITHDRAWN = "[withdrawn: the turn ended before the operator decided]"


class PermissionStatus(StrEnum):
    PENDING = "pending"
    ALLOWED = "allowed"
    DENIED = "denied"
    EXPIRED = "expired"
    DROPPED = "dropped"  # the asking harness is gone (agent restarted, removed)


Decision = Literal["allow", "always", "deny"]


class PermissionRow(BaseModel):
    model_config = ConfigDict(frozen=True)
    id: int
    agent: str
    tool: str
    input: dict[str, Any] = Field(default_factory=dict)
    tool_use_id: str | None = None
    reason: str | None = None
    rule: str | None = None
    asked_at: str
    deadline_at: str
    status: PermissionStatus = PermissionStatus.PENDING
    decided_at: str | None = None
    note: str = ""
    kept_rule: str | None = None
    generation: int = 0

    @property
    def pending(self) -> bool:
        return self.status is PermissionStatus.PENDING

    @property
    def allowed(self) -> bool:
        return self.status is PermissionStatus.ALLOWED


# -- agent socket -------------------------------------------------------------------------------


@verb("agent")
class AskPermission(Request):
    """May the model use `tool` with `input`? Parks until decided or expired."""

    cmd: Literal["ask_permission"]
    tool: str = Field(min_length=1, max_length=TOOL_MAX)
    input: dict[str, Any] = Field(default_factory=dict)
    tool_use_id: str | None = Field(default=None, max_length=KEY_MAX)
    reason: str | None = Field(default=None, max_length=REASON_MAX)
    rule: str | None = Field(default=None, max_length=1000)
    # the harness's own id for this request: a resend with the same key joins it
    key: str = Field(min_length=1, max_length=KEY_MAX)
    # the asking harness's run: a new one drops what an earlier run left pending
    harness: str = Field(min_length=1, max_length=KEY_MAX)

    @field_validator("input")
    @classmethod
    def _small(cls, v: dict[str, Any]) -> dict[str, Any]:
        size = len(json.dumps(v, ensure_ascii=False).encode())
        if size > INPUT_JSON_MAX:
            raise ValueError(f"the input is {size} bytes as JSON; the limit is {INPUT_JSON_MAX}")
        return v

    def may_park(self) -> bool:
        return True


class PermissionDecided(Response):
    id: int
    behavior: Literal["allow", "deny"]
    status: PermissionStatus
    note: str = ""  # for a denial: what the model sees


@verb("agent")
class WithdrawPermission(Request):
    """The asker no longer waits (its turn was interrupted or ended): drop request `key`."""

    cmd: Literal["withdraw_permission"]
    key: str = Field(min_length=1, max_length=KEY_MAX)


class PermissionWithdrawn(Response):
    withdrawn: bool  # False: unknown key, or already decided
    id: int | None = None


# -- host socket --------------------------------------------------------------------------------


@verb("host")
class Permissions(Request):
    """Pending tool permission requests, oldest first."""

    cmd: Literal["permissions"]


class PermissionsOk(Response):
    permissions: list[PermissionRow]


@verb("host")
class DecidePermission(Request):
    """Allow once, allow always (for this agent), or deny with a note the model sees."""

    cmd: Literal["decide_permission"]
    id: int
    decision: Decision
    note: str | None = Field(default=None, max_length=NOTE_MAX)


class PermissionDecidedOk(Response):
    permission: PermissionRow
