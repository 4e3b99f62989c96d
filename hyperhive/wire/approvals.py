"""Wire types for operator approvals. Pure types (pydantic), registered with `@verb`; no I/O.

Manager socket: `request_spawn`, `request_init_config`, `request_apply_commit` (each answers
the approval id at once; the outcome arrives later as `system` events).
Host socket: v1 `pending` / `approve` / `deny` / `request_spawn` (request models in
`wire.host`; their answers are here), plus the addition `approval` (one row and its diff).

An approval row uses the original hyperhive's field names: `id` (ascending = oldest first),
`agent`, `kind`, `commit_ref` (may be empty), optional `fetched_sha`, `requested_at`,
`status`, optional `resolved_at`, `note`, `description`; `requested_by` is an addition.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from hyperhive.wire.base import Request, Response, verb

DESCRIPTION_MAX = 4000
NOTE_MAX = 4000


class ApprovalKind(StrEnum):
    SPAWN = "spawn"
    INIT_CONFIG = "init_config"
    APPLY_COMMIT = "apply_commit"


class ApprovalStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    FAILED = "failed"
    CANCELLED = "cancelled"


class ApprovalRow(BaseModel):
    model_config = ConfigDict(frozen=True)
    id: int
    agent: str
    kind: str
    commit_ref: str = ""
    fetched_sha: str | None = None
    requested_at: str
    status: str
    resolved_at: str | None = None
    note: str = ""
    description: str = ""
    requested_by: str = ""  # addition: who asked (manager name or "operator")

    @property
    def pending(self) -> bool:
        return self.status == ApprovalStatus.PENDING


# -- manager socket -----------------------------------------------------------------------------


@verb("manager")
class MgrRequestSpawn(Request):
    """Ask the operator to create agent `name` (a kept config repo is reused)."""

    cmd: Literal["request_spawn"]
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=DESCRIPTION_MAX)
    # the node to run it on, across nodes (default: the node it is requested on)
    node: str | None = Field(default=None, min_length=1, max_length=63)


@verb("manager")
class RequestInitConfig(Request):
    """Ask the operator to seed `name`'s config repo from the template (fires `config_ready`)."""

    cmd: Literal["request_init_config"]
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=DESCRIPTION_MAX)


@verb("manager")
class RequestApplyCommit(Request):
    """Ask the operator to apply commit `sha` of `agent`'s config repo (pinned at once)."""

    cmd: Literal["request_apply_commit"]
    agent: str = Field(min_length=1, max_length=200)
    sha: str = Field(min_length=1, max_length=80)
    description: str = Field(default="", max_length=DESCRIPTION_MAX)


class ApprovalQueued(Response):
    id: int
    approval: ApprovalRow


# -- host socket --------------------------------------------------------------------------------


class PendingOk(Response):
    """v1 `pending`: pending rows and the most recently resolved ones, oldest first."""

    approvals: list[ApprovalRow]


class ApprovalResolvedOk(Response):
    """v1 `approve`/`deny` answer: a bare success to old clients (they ignore `approval`)."""

    approval: ApprovalRow


@verb("host")
class ShowApproval(Request):
    """One approval and, for a pending commit, the plain unified diff it would apply."""

    cmd: Literal["approval"]
    id: int


class ShowApprovalOk(Response):
    approval: ApprovalRow
    diff: str | None = None
