"""In-memory `PermissionStore` (the fake for fast feature tests; same contract as sqlite)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from hyperhive.core.store.permissions_base import PermissionStore
from hyperhive.errors import NotFound
from hyperhive.wire.permissions import PermissionRow, PermissionStatus


class MemoryPermissionStore(PermissionStore):
    def __init__(self) -> None:
        self._rows: dict[int, PermissionRow] = {}
        self._harness: dict[int, str] = {}
        self._keys: dict[tuple[str, str], int] = {}
        self._rules: dict[tuple[str, int], list[str]] = {}
        self._next = 1

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
        known = self._keys.get((agent, key))
        if known is not None:
            return self._rows[known], False
        pid, self._next = self._next, self._next + 1
        row = PermissionRow(
            id=pid,
            agent=agent,
            generation=generation,
            tool=tool,
            input=copy.deepcopy(dict(tool_input)),
            tool_use_id=tool_use_id,
            reason=reason,
            rule=rule,
            asked_at=asked_at,
            deadline_at=deadline_at,
        )
        self._rows[pid] = row
        self._harness[pid] = harness
        self._keys[(agent, key)] = pid
        return row, True

    async def get(self, pid: int) -> PermissionRow | None:
        return self._rows.get(pid)

    async def by_key(self, agent: str, key: str) -> PermissionRow | None:
        pid = self._keys.get((agent, key))
        return self._rows[pid] if pid is not None else None

    async def pending(self, agent: str | None = None) -> list[PermissionRow]:
        return [
            r
            for _, r in sorted(self._rows.items())
            if r.pending and (agent is None or r.agent == agent)
        ]

    async def decide(
        self,
        pid: int,
        status: PermissionStatus,
        at: str,
        note: str = "",
        kept_rule: str | None = None,
    ) -> tuple[PermissionRow, bool]:
        row = self._rows.get(pid)
        if row is None:
            raise NotFound(f"no permission request #{pid}")
        if not row.pending:
            return row, False
        row = row.model_copy(
            update={"status": status, "decided_at": at, "note": note, "kept_rule": kept_rule}
        )
        self._rows[pid] = row
        return row, True

    async def stale(self, agent: str, harness: str | None = None) -> list[int]:
        return [
            r.id
            for r in await self.pending(agent)
            if harness is None or self._harness[r.id] != harness
        ]

    async def overdue(self, cutoff: str, limit: int = 100) -> list[int]:
        due = sorted(
            (r.deadline_at, r.id)
            for r in self._rows.values()
            if r.pending and r.deadline_at <= cutoff
        )
        return [pid for _, pid in due[:limit]]

    async def next_deadline(self) -> str | None:
        return min((r.deadline_at for r in self._rows.values() if r.pending), default=None)

    async def keep_rule(self, agent: str, generation: int, rule: str, at: str) -> None:
        kept = self._rules.setdefault((agent, generation), [])
        if rule not in kept:
            kept.append(rule)

    async def rules(self, agent: str, generation: int) -> list[str]:
        return list(self._rules.get((agent, generation), []))

    async def forget_rule(self, agent: str, generation: int, rule: str) -> bool:
        kept = self._rules.get((agent, generation), [])
        if rule in kept:
            kept.remove(rule)
            return True
        return False
