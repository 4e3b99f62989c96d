"""Verbs spoken on an agent's own socket (`run/agents/<name>/hive.sock`).

The socket is the identity: whoever connects to it *is* that agent, so no request carries a
sender. The manager's socket speaks all of these plus the manager verbs.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from hyperhive.wire.base import Request, Response, verb
from hyperhive.wire.framing import BODY_MAX as BODY_MAX

RECV_WAIT_MAX = 180.0
RECV_MAX_MAX = 32

MessageKind = Literal["message", "event", "reminder"]


class InboxRow(BaseModel):
    """One stored message as agents and pages see it."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)
    id: int
    sender: str = Field(alias="from")
    to: str
    body: str
    kind: MessageKind = "message"
    sent_at: str
    delivered_at: str | None = None
    trace_parent: str | None = None  # the sender's span (W3C traceparent), when traced


# a W3C traceparent: version-traceid-spanid-flags, lower-case hex
TRACEPARENT_PATTERN = r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"


@verb("agent")
class Send(Request):
    """Send `body` to an agent, `operator`, or `*` (every agent but the sender).
    `trace_parent`: the sending turn's span, so the recipient's turn joins its trace."""

    cmd: Literal["send"]
    to: str = Field(min_length=1, max_length=63)
    body: str = Field(min_length=1, max_length=BODY_MAX)
    trace_parent: str | None = Field(default=None, max_length=55, pattern=TRACEPARENT_PATTERN)


class SendOk(Response):
    ids: list[int]
    recipients: list[str]


@verb("agent")
class Recv(Request):
    """Take up to `max` unread messages. `wait_seconds` omitted/0 = peek and return at once;
    positive = park up to that long (cap 180 s), waking the moment mail arrives."""

    cmd: Literal["recv"]
    wait_seconds: float | None = Field(default=None, ge=0, le=RECV_WAIT_MAX)
    max: int = Field(default=8, ge=1, le=RECV_MAX_MAX)

    def may_park(self) -> bool:
        return bool(self.wait_seconds)


class RecvOk(Response):
    messages: list[InboxRow]
    remaining: int
    # present when `messages` is not empty: the connection holds them until it acknowledges
    # them (`ack` or its next `recv`); silent this long, it loses them back to the inbox
    lease_seconds: float | None = None


LEASE_IDS_MAX = 1024


@verb("agent")
class Ack(Request):
    """Acknowledge messages this connection received: they are delivered, never offered
    again. `ids` omitted = everything this connection holds."""

    cmd: Literal["ack"]
    ids: list[int] | None = Field(default=None, max_length=LEASE_IDS_MAX)


@verb("agent")
class Release(Request):
    """Give back messages this connection received but will not handle (now): they are
    unread again and offered to the next recv. `ids` omitted = everything it holds."""

    cmd: Literal["release"]
    ids: list[int] | None = Field(default=None, max_length=LEASE_IDS_MAX)


class LeaseIdsOk(Response):
    """The ids of the request that this connection held (now acknowledged or released)."""

    ids: list[int]


@verb("agent")
class Renew(Request):
    """Keep this connection's leases (any request does; this one does nothing else)."""

    cmd: Literal["renew"]


class RenewOk(Response):
    held: int
    lease_seconds: float


@verb("agent")
class Recent(Request):
    """The agent's latest inbox rows, newest first (delivered or not)."""

    cmd: Literal["recent"]
    limit: int = Field(default=20, ge=1, le=500)


class RecentOk(Response):
    rows: list[InboxRow]


@verb("agent")
class Whoami(Request):
    """Who this socket is, and the settings a harness needs."""

    cmd: Literal["whoami"]


@verb("agent")
class GetConfig(Request):
    """The agent's applied configuration (what its harness runs with)."""

    cmd: Literal["config"]


class GetConfigOk(Response):
    model: str
    config: dict[str, Any]  # AgentConfig as JSON
    role_prompt: str | None = None  # the role prompt file's text, when configured


class WhoamiOk(Response):
    name: str
    kind: Literal["agent", "manager"]
    generation: int
    model: str
    manager: str
    unread: int


REPORT_NOTE_MAX = 2000  # characters; the core keeps the first 500 on one line
TOOL_NAME_MAX = 200


@verb("agent")
class ReportState(Request):
    """The harness tells the core what it is doing (best-effort; the core keeps only the latest
    report, in memory). `failed` = the last turn failed (`note` says why); `tool` = the tool
    running now in the turn; `turn_started_at` = when the running turn began."""

    cmd: Literal["report_state"]
    state: Literal["idle", "in_turn", "compacting", "waiting_operator", "failed"]
    note: str | None = Field(default=None, max_length=REPORT_NOTE_MAX)
    turn_started_at: str | None = Field(default=None, max_length=40)
    tool: str | None = Field(default=None, max_length=TOOL_NAME_MAX)
