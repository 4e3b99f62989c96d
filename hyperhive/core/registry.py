"""The agent registry: which agents exist, their kind, generation and small mutable flags.

Every registration (a spawn, or the revival of a tombstone) is a new incarnation with the
next generation of that name; generations are never reused (the counter outlives destroy).

Invariants: names are validated before anything is stored; exactly one record has kind
`manager`; the in-memory map mirrors the `agents` table (the registry is its only writer), and
every change is published as a dashboard event; a `sync` (re-read of a shared table) leaves
alone a name with a local write in flight or made since its read began.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Iterator

from hyperhive.clock import iso
from hyperhive.core.events import EventHub
from hyperhive.core.records import AgentKind, AgentRecord
from hyperhive.core.store.base import AgentStore
from hyperhive.errors import Conflict, NotFound
from hyperhive.names import validate_name, validate_new_name

logger = logging.getLogger(__name__)


class AgentRegistry:
    def __init__(self, store: AgentStore, hub: EventHub) -> None:
        self._store = store
        self._hub = hub
        self._agents: dict[str, AgentRecord] = {}
        self._on_change: list[Callable[[str], None]] = []
        # local changes, numbered as they start: `sync` ignores a name changed here since its
        # read began (that snapshot may predate the change and would undo it)
        self._local = 0
        self._local_at: dict[str, int] = {}
        # names with a local write in flight: a sync skips them whenever its read began (the
        # write may commit during the read and the sync would apply it before the writer does)
        self._writing: dict[str, int] = {}

    def _touch(self, name: str) -> None:
        self._local += 1
        self._local_at[name] = self._local

    @contextlib.contextmanager
    def _write(self, name: str) -> Iterator[None]:
        """Around a local write of `name`: numbered before and after, in flight meanwhile."""
        self._touch(name)
        self._writing[name] = self._writing.get(name, 0) + 1
        try:
            yield
        finally:
            self._touch(name)
            self._writing[name] -= 1
            if not self._writing[name]:
                del self._writing[name]

    async def load(self) -> None:
        self._agents = {a.name: a for a in await self._store.all_agents()}

    async def sync(self) -> list[str]:
        """Re-read the table (a hive across hosts: another node registered, changed or removed
        agents) and publish each difference as the event the change would have published
        here. Returns the names that changed."""
        began = self._local
        fresh = {a.name: a for a in await self._store.all_agents()}
        changed = []
        for name in sorted(set(fresh) | set(self._agents)):
            old, new = self._agents.get(name), fresh.get(name)
            if old == new or name in self._writing or self._local_at.get(name, 0) > began:
                continue
            changed.append(name)
            if new is None:
                del self._agents[name]
                self._hub.publish("agent_removed", agent=name)
            elif old is None or old.generation != new.generation:
                self._agents[name] = new
                self._hub.publish(
                    "agent_registered", agent=name, kind=new.kind, runtime=new.runtime
                )
            else:
                self._agents[name] = new
                diff = {
                    f.name: getattr(new, f.name)
                    for f in dataclasses.fields(new)
                    if getattr(new, f.name) != getattr(old, f.name)
                }
                self._hub.publish("agent_updated", agent=name, **diff)
            self._changed(name)
        return changed

    def on_change(self, fn: Callable[[str], None]) -> None:
        self._on_change.append(fn)

    def _changed(self, name: str) -> None:
        for fn in self._on_change:
            fn(name)

    def names(self) -> list[str]:
        return sorted(self._agents)

    def all(self) -> list[AgentRecord]:
        return [self._agents[n] for n in sorted(self._agents)]

    def get(self, name: str) -> AgentRecord | None:
        return self._agents.get(name)

    def require(self, name: str) -> AgentRecord:
        validate_name(name)
        rec = self._agents.get(name)
        if rec is None:
            raise NotFound(f'agent "{name}" is not managed by this hive')
        return rec

    def manager(self) -> AgentRecord | None:
        for rec in self._agents.values():
            if rec.kind == "manager":
                return rec
        return None

    async def register(
        self,
        name: str,
        kind: AgentKind = "agent",
        *,
        runtime: str = "external",
        parent: str | None = None,
        model: str | None = None,
    ) -> AgentRecord:
        validate_new_name(name)
        if name in self._agents:
            raise Conflict(f'agent "{name}" already exists')
        if kind == "manager" and self.manager() is not None:
            raise Conflict("this hive already has a manager")
        rec = AgentRecord(
            name=name,
            kind=kind,
            created_at=iso(time.time()),
            generation=await self._store.next_generation(name),
            runtime=runtime,
            parent=parent,
            model=model,
        )
        with self._write(name):
            await self._store.put_agent(rec)
            self._agents[name] = rec
        logger.info(
            "registered %s %s", kind, name, extra={"action": "agent_registered", "agent": name}
        )
        self._hub.publish("agent_registered", agent=name, kind=kind, runtime=runtime)
        self._changed(name)
        return rec

    async def update(self, name: str, **changes: object) -> AgentRecord:
        rec = self.require(name)
        new = dataclasses.replace(rec, **changes)  # type: ignore[arg-type]
        if new == rec:
            return rec
        with self._write(name):
            await self._store.put_agent(new)
            self._agents[name] = new
        self._hub.publish("agent_updated", agent=name, **{k: v for k, v in changes.items()})
        self._changed(name)
        return new

    async def remove(self, name: str) -> None:
        self.require(name)
        with self._write(name):
            await self._store.delete_agent(name)
            self._agents.pop(name, None)
        self._hub.publish("agent_removed", agent=name)
        self._changed(name)
