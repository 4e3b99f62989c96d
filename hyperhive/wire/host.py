"""The host admin socket protocol, compatible with the original hyperhive's `host.sock` v1.

One request per connection: `{"cmd": ...}` in, `{"version": 1, "ok": ..., ...payload}` out;
optional fields are omitted, never null. The operator is the caller. Verbs beyond v1 (`send`,
`inbox`, ...) are additions old clients never send.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from hyperhive.wire.agent import BODY_MAX, InboxRow
from hyperhive.wire.base import Request, Response, verb

NAME_FIELD = Field(min_length=1, max_length=200)  # validated as an agent name by the handler
# the incarnation a kill/restart is meant for; a mismatch is refused (`conflict`)
GENERATION_FIELD = Field(default=None, ge=1)


class AgentStatusRow(BaseModel):
    """One agent's status. Flags are orthogonal, not a state machine."""

    model_config = ConfigDict(frozen=True)
    name: str
    running: bool
    failed: bool = False
    needs_update: bool = False
    needs_login: bool = False
    paused: bool = False
    pending_reminders: int = 0
    deployed_sha: str | None = None
    parent: str | None = None
    active_model: str | None = None
    status_text: str | None = None
    status_set_at: str | None = None
    url: str | None = None
    # additions (old clients ignore unknown keys)
    kind: str | None = None
    runtime: str | None = None
    generation: int | None = None
    transient: str | None = None
    unread: int | None = None
    web_port: int | None = None  # the agent's page on 127.0.0.1
    oom_kills: int | None = None  # processes OOM-killed in its sandbox this run (memory limit)
    pending_permissions: int | None = None  # tool permission requests waiting for the operator
    # the one derived state (`hyperhive.core.agentstate.AgentState` values), its note and since
    state: str | None = None
    state_note: str | None = None
    state_since: str | None = None
    # budgets: the highest fraction of any of its limits used (1.0 = at the limit), and
    # whether its breaker is tripped (hyperhive.core.budgets)
    budget_used: float | None = None
    budget_tripped: bool | None = None
    node: str | None = None  # the node (host) that runs the agent (docs/multihost.md)
    # its usage today, when a feature reports it (status_fields)
    tokens_today: int | None = None
    cost_today_usd: float | None = None


class Scope(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    agent_names: list[str] = Field(min_length=1)


@verb("host")
class List(Request):
    cmd: Literal["list"]


class ListOk(Response):
    agents: list[str]


@verb("host")
class AgentStatus(Request):
    cmd: Literal["agent_status"]


class AgentStatusOk(Response):
    agent_statuses: list[AgentStatusRow]


@verb("host")
class Urls(Request):
    cmd: Literal["urls"]


class UrlSet(BaseModel):
    domain: str
    home: str | None = None
    forge: str | None = None
    matrix: str | None = None
    dashboard: str | None = None


class UrlsOk(Response):
    urls: UrlSet


@verb("host")
class Spawn(Request):
    """Create an agent right away (operator only: no approval needed)."""

    cmd: Literal["spawn"]
    name: str = NAME_FIELD
    runtime: Literal["bwrap", "process", "external", "fake"] | None = None
    # reviving a tombstone: also take the previous incarnation's unread mail (default: not)
    keep_mail: bool = False
    # the node to run it on (default: the live node with the most free memory)
    node: str | None = Field(default=None, min_length=1, max_length=63)


@verb("host")
class SetPaused(Request):
    cmd: Literal["set_paused"]
    name: str = NAME_FIELD
    paused: bool


@verb("host")
class Pending(Request):
    cmd: Literal["pending"]


@verb("host")
class Approve(Request):
    cmd: Literal["approve"]
    id: int
    note: str | None = None


@verb("host")
class Deny(Request):
    cmd: Literal["deny"]
    id: int
    note: str | None = None


@verb("host")
class RequestSpawn(Request):
    cmd: Literal["request_spawn"]
    name: str = NAME_FIELD
    description: str | None = None
    node: str | None = Field(default=None, min_length=1, max_length=63)  # docs/multihost.md


@verb("host")
class Start(Request):
    cmd: Literal["start"]
    scope: Scope


@verb("host")
class Stop(Request):
    cmd: Literal["stop"]
    scope: Scope
    graceful: bool = True


@verb("host")
class Restart(Request):
    cmd: Literal["restart"]
    name: str = NAME_FIELD
    generation: int | None = GENERATION_FIELD


@verb("host")
class Kill(Request):
    cmd: Literal["kill"]
    name: str = NAME_FIELD
    generation: int | None = GENERATION_FIELD


@verb("host")
class Destroy(Request):
    cmd: Literal["destroy"]
    name: str = NAME_FIELD
    purge: bool = False


@verb("host")
class Rebuild(Request):
    cmd: Literal["rebuild"]
    name: str = NAME_FIELD


@verb("host")
class SubscribeAgentStatus(Request):
    cmd: Literal["subscribe_agent_status"]


# -- additions beyond v1 ------------------------------------------------------------------------


@verb("host")
class HostSend(Request):
    """The operator sends a message (`to` = agent or `*`)."""

    cmd: Literal["send"]
    to: str = Field(min_length=1, max_length=63)
    body: str = Field(min_length=1, max_length=BODY_MAX)


class HostSendOk(Response):
    ids: list[int]
    recipients: list[str]


@verb("host")
class Inbox(Request):
    """The operator's inbox, newest first. `mark_read` marks the returned rows delivered."""

    cmd: Literal["inbox"]
    limit: int = Field(default=50, ge=1, le=1000)
    mark_read: bool = False


class InboxOk(Response):
    rows: list[InboxRow]
    unread: int
