"""The storage interface of tool permission requests (`core/permissions.py`) and of each
agent's kept "allow always" rules; backends: `permissions_sqlite.py` (the daemon's) and
`permissions_memory.py` (the fake for fast feature tests). The contract suite
`tests/core/store/test_permissions_contract.py` runs against every backend; a PostgreSQL
backend implements the same methods and adds itself there.

Invariants (every backend): ids are monotonic and never reused; a write returns only after it
is durable; a pending request leaves `pending` at most once, decided by the store (`decide`
moves it only from `pending`, and tells the caller whether this call did); `(agent, key)`
names one request for good (`insert` with a known pair returns the existing row, in whatever
state it is); the caller passes generations (the store does not read agents).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any

from hyperhive.wire.permissions import PermissionRow, PermissionStatus


class PermissionStore(abc.ABC):
    @abc.abstractmethod
    async def insert(
        self,
        *,
        agent: str,
        generation: int,
        harness: str,
        key: str,
        tool: str,
        tool_input: Mapping[str, Any],
        asked_at: str,
        deadline_at: str,
        tool_use_id: str | None = None,
        reason: str | None = None,
        rule: str | None = None,
    ) -> tuple[PermissionRow, bool]:
        """Store a pending request; (the row, True). If `agent` already has a request with
        `key`: (that row as it is, False)."""

    @abc.abstractmethod
    async def get(self, pid: int) -> PermissionRow | None: ...

    @abc.abstractmethod
    async def by_key(self, agent: str, key: str) -> PermissionRow | None:
        """`agent`'s request named `key`, in whatever state it is."""

    @abc.abstractmethod
    async def pending(self, agent: str | None = None) -> list[PermissionRow]:
        """Pending requests (of `agent`, or everyone's), oldest first."""

    @abc.abstractmethod
    async def decide(
        self,
        pid: int,
        status: PermissionStatus,
        at: str,
        note: str = "",
        kept_rule: str | None = None,
    ) -> tuple[PermissionRow, bool]:
        """Move `pid` from pending to `status`. (row as it now is, whether this call moved it).
        `NotFound` for an unknown id."""

    @abc.abstractmethod
    async def stale(self, agent: str, harness: str | None = None) -> list[int]:
        """Ids of `agent`'s pending requests asked by another harness run than `harness`
        (None: every pending one of `agent`), oldest first."""

    @abc.abstractmethod
    async def overdue(self, cutoff: str, limit: int = 100) -> list[int]:
        """Ids of pending requests whose deadline is at or before `cutoff`, earliest first."""

    @abc.abstractmethod
    async def next_deadline(self) -> str | None:
        """The earliest deadline of a pending request, if any."""

    # -- kept rules ("allow always") ------------------------------------------------------

    @abc.abstractmethod
    async def keep_rule(self, agent: str, generation: int, rule: str, at: str) -> None:
        """Keep `rule` for that incarnation of `agent` (keeping it twice is a no-op)."""

    @abc.abstractmethod
    async def rules(self, agent: str, generation: int) -> list[str]:
        """The rules kept for that incarnation of `agent`, in the order they were kept."""

    @abc.abstractmethod
    async def forget_rule(self, agent: str, generation: int, rule: str) -> bool:
        """Drop one kept rule; whether it was there."""
