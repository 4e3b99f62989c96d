"""The search feature: the host verb `search`, the manager verb `search_history` (the
`search_history` MCP tool) and the turn indexer that keeps the turn history in the index.

Messages, questions and approvals need no work here: the store's triggers index them in their
own write transactions (`core/store/search_sqlite.py`). Turn history is pulled from each
agent's event store (`core/turnindex.py`, where the reasons are) by the supervised task
`search-indexer`: an agent whose state changed (a turn began or ended: the hub's `agent_state`
/ `agent_axes` events) is pulled within `PULL_DELAY` seconds, and every agent every
`FULL_PASS` seconds (catching up after a restart, mirroring retention, and dropping the docs
of agents purged meanwhile: neither registered nor with a kept state dir).

Invariants: a search never writes; user input is validated (`SearchFields`, agent names by
`validate_name`, the query by `fts_query`) and refused with the one error shape; a failed pull
of one agent is logged and retried on the next pass, never stops the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from hyperhive.clock import iso
from hyperhive.core.events import HiveEvent
from hyperhive.core.feature import BaseFeature
from hyperhive.core.rpc import Caller
from hyperhive.core.store.search import SearchQuery, SearchStore, fts_query
from hyperhive.core.turnindex import index_agent
from hyperhive.errors import HiveError
from hyperhive.names import OPERATOR, validate_name
from hyperhive.wire.search import Search, SearchFields, SearchHistory, SearchHit, SearchOk

if TYPE_CHECKING:
    from hyperhive.core.hive import Hive

logger = logging.getLogger(__name__)

PULL_DELAY = 0.5  # an agent whose state changed is pulled this long after (batching a burst)
FULL_PASS = 60.0  # every agent, this often
_WAKE_KINDS = frozenset({"agent_state", "agent_axes", "agent_registered"})


def link_of(hit: SearchHit) -> str | None:
    """Where the dashboard shows a hit: the agent page, at the event for a turn."""
    if hit.kind == "turn":
        return f"/agent/{hit.agent}/#event-{hit.ref}"
    who = hit.peer if hit.kind == "message" and hit.peer != OPERATOR else hit.agent
    if who is None or who == OPERATOR:
        return None
    return f"/agent/{who}/"


class SearchFeature(BaseFeature):
    name = "search"

    def __init__(self, *, pull_delay: float = PULL_DELAY, full_pass: float = FULL_PASS) -> None:
        self.pull_delay = pull_delay
        self.full_pass = full_pass
        self.store: SearchStore
        self._dirty: set[str] = set()
        self._wake = asyncio.Event()
        self.passes = 0  # completed indexer passes (tests, logs)

    async def start(self, hive: Hive) -> None:
        self.hive = hive
        self.store = hive.storage.search

        @hive.host_rpc.handle(Search)
        async def search(caller: Caller, req: Search) -> SearchOk:
            return await self.search(req)

        @hive.agent_rpc.handle(SearchHistory)
        async def search_history(caller: Caller, req: SearchHistory) -> SearchOk:
            return await self.search(req)

        hive.hub.add_listener(self._on_event)

    async def after_start(self) -> None:
        self.hive.tasks.spawn("search-indexer", self._indexer, restart=True)

    def _on_event(self, ev: HiveEvent) -> None:
        name = ev.data.get("agent")
        if ev.kind in _WAKE_KINDS and isinstance(name, str):
            self._dirty.add(name)
            self._wake.set()

    async def search(self, fields: SearchFields) -> SearchOk:
        fts, words = fts_query(fields.query)
        agent = validate_name(fields.agent) if fields.agent is not None else None
        since = None
        if fields.since_seconds is not None:
            since = iso(self.hive.clock.now() - fields.since_seconds)
        q = SearchQuery(fts, words, agent, tuple(dict.fromkeys(fields.kinds)), since, fields.limit)
        hits = await self.store.search(q)
        return SearchOk(hits=[h.model_copy(update={"link": link_of(h)}) for h in hits], query=fts)

    # -- the turn indexer -------------------------------------------------------------------

    async def index_now(self, names: list[str] | None = None) -> int:
        """One pass over `names` (default: every registered agent). Returns docs added."""
        cfg = self.hive.config.retention
        before = iso(self.hive.clock.now() - cfg.events_days * 86400)
        added = 0
        if names is None:  # a full pass: also the agents gone for good (purged)
            try:
                await self._forget_purged()
            except Exception as exc:  # the database away (PostgreSQL): the next pass retries
                logger.warning(
                    "search: could not check for purged agents: %s",
                    exc,
                    extra={"action": "search_index_failed"},
                )
        for name in names if names is not None else self.hive.registry.names():
            if self.hive.registry.get(name) is None:
                continue
            try:
                added += await index_agent(
                    self.store, name, self.hive.paths.state_dir(name), before=before
                )
            except Exception:
                logger.exception(
                    "indexing the turns of %s failed",
                    name,
                    extra={"action": "search_index_failed", "agent": name},
                )
        self.passes += 1
        return added

    async def _forget_purged(self) -> None:
        """Drop the turn docs of agents that are neither registered nor kept (no state dir:
        purged), as their event stores are gone."""
        for name in await self.store.turn_agents():
            if self.hive.registry.get(name) is not None:
                continue
            try:
                gone = not self.hive.paths.state_dir(name).is_dir()
            except HiveError:  # not a valid name (cannot be a state dir)
                gone = True
            if gone:
                n = await self.store.reset_turns(name)
                logger.info(
                    "search: forgot %d turn doc(s) of purged agent %s",
                    n,
                    name,
                    extra={"action": "search_forget", "agent": name},
                )

    async def _indexer(self) -> None:
        loop = asyncio.get_running_loop()
        next_full = loop.time()
        while True:
            if loop.time() >= next_full:
                self._dirty.clear()
                await self.index_now()
                next_full = loop.time() + self.full_pass
            elif self._dirty:
                await asyncio.sleep(self.pull_delay)  # let a burst of changes settle
                names, self._dirty = sorted(self._dirty), set()
                await self.index_now(names)
            self._wake.clear()
            if self._dirty:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0.0, next_full - loop.time()))
