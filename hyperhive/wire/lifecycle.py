"""Lifecycle verbs: manager tools (start/restart/kill/update) and host additions (logs,
tombstones, purge, shell/login argv). Host v1 start/stop/restart/kill/destroy/rebuild are in
`wire.host`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from hyperhive.wire.base import Request, Response, verb
from hyperhive.wire.host import GENERATION_FIELD

NAME = Field(min_length=1, max_length=200)


@verb("manager")
class MgrStart(Request):
    cmd: Literal["start"]
    name: str = NAME


@verb("manager")
class MgrRestart(Request):
    cmd: Literal["restart"]
    name: str = NAME
    generation: int | None = GENERATION_FIELD


@verb("manager")
class MgrKill(Request):
    cmd: Literal["kill"]
    name: str = NAME
    generation: int | None = GENERATION_FIELD


@verb("manager")
class MgrUpdate(Request):
    """Idempotent rebuild from the agent's applied config."""

    cmd: Literal["update"]
    name: str = NAME


LogSource = Literal["harness", "sandbox"]


@verb("host")
class Logs(Request):
    cmd: Literal["logs"]
    name: str = NAME
    lines: int = Field(default=200, ge=1, le=5000)
    source: LogSource = "harness"


class LogsOk(Response):
    name: str
    source: LogSource
    lines: list[str]


class TombstoneView(BaseModel):
    model_config = ConfigDict(frozen=True)
    name: str
    size_bytes: int
    modified_at: str
    age_seconds: float
    credentials_kept: bool


@verb("host")
class Tombstones(Request):
    cmd: Literal["tombstones"]


class TombstonesOk(Response):
    tombstones: list[TombstoneView]


@verb("host")
class Purge(Request):
    """Wipe a tombstone's kept state and config (no undo). Refused while a live agent has the name."""

    cmd: Literal["purge"]
    name: str = NAME


@verb("host")
class ShellArgv(Request):
    """The host command that runs `argv` inside the agent's sandbox as the agent (for
    `hive shell` / `hive login`, which exec it on the operator's terminal)."""

    cmd: Literal["shell_argv"]
    name: str = NAME
    argv: list[str] = Field(default_factory=list)


class ShellArgvOk(Response):
    argv: list[str]
    env: dict[str, str] = Field(default_factory=dict)
