"""The nodes feature: this host's identity in a hive spread over several (docs/multihost.md),
its heartbeat, who is live or lost, and where agents are placed.

Identity: the name given (`hive serve --node`, `HIVE_NODE`), else `[node] name`, else the host
name (lowercased, anything outside `[a-z0-9-]` as `-`).

Heartbeat: every `[node] heartbeat_seconds` the node writes its row (load, free memory, agents
placed on it, peer and dashboard URLs) through the `NodeStore`; the same loop reads every
row and sees a node as *lost* when its last heartbeat is older than `lost_after_seconds`
(clocks of the hosts assumed in step, NTP). Lost/back changes are published (`node_lost`,
`node_back`) plus one `agent_updated` per agent on that node, so status streams and the
dashboard redraw them as `node lost`.

Placement: an agent's node is a row of the store (`agent_nodes`); an agent registered without
one (the manager, a single-host hive's agents from before) is placed on the node that
registered it. `pick()` answers where a new agent goes: the named node if live, else the live
node with the most free memory (ties: fewer agents, then name).

Invariants: this node never starts a sandbox of an agent placed elsewhere (`owns`); the
store decides a name's placement once (`place(expect_free=True)`); a lost node's row stays
(it comes back and re-adopts its agents: the lifecycle adopts what `owns` says is its own);
placement changes of one name are written in the order they arose (a destroy's deferred
unplace before the next spawn's place: `_claim` takes the turn synchronously); a `refresh`
never undoes a placement change made here while its read was in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import socket
import time
from typing import TYPE_CHECKING, Any, NamedTuple

from hyperhive.clock import iso
from hyperhive.core.feature import BaseFeature
from hyperhive.core.rpc import Caller
from hyperhive.core.store.nodes import NodeRow, NodeStore
from hyperhive.errors import Conflict, NotFound, Unavailable
from hyperhive.names import NAME_RE
from hyperhive.wire.nodes import NodeInfo, Nodes, NodesOk

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from hyperhive.core.hive import Hive

logger = logging.getLogger(__name__)

ENV = "HIVE_NODE"
FULL_PUSH_EVERY = 5  # heartbeats between two pushes of every status row (core/noderelay.py)


def host_node_name() -> str:
    """The host name as a node name."""
    raw = socket.gethostname().split(".")[0].lower()
    name = re.sub(r"[^a-z0-9-]", "-", raw).strip("-")[:63] or "node"
    return name if NAME_RE.match(name) else "node"


def mem_free_mb() -> int:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 0


def load_average() -> float:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return 0.0


class _Turn(NamedTuple):
    """One claimed turn of a name's placement changes: the previous turn (waited for first),
    this one, and whether it only adopts the store's placement."""

    prev: asyncio.Future[None] | None
    turn: asyncio.Future[None]
    adopt: bool


class NodesFeature(BaseFeature):
    name = "nodes"

    def __init__(
        self,
        node: str | None = None,
        *,
        store: Callable[[Hive], NodeStore] | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._given = node
        self._store_factory = store
        self._now = now
        self.node = ""
        self.shared = False  # set on start: the agents table is written by other nodes too
        self.store: NodeStore
        self.peer_url = ""  # set by the peer server once bound
        self.secret = ""
        self.rows: dict[str, NodeRow] = {}  # last read of every node's row
        self.placed: dict[str, str] = {}  # last read of agent → node
        self.lost: set[str] = set()
        self._started_at = now()
        self._beat_now = asyncio.Event()
        self._refreshing = asyncio.Lock()
        # placement changes of one name run in the order they arose (a destroy's unplace
        # before the next spawn's place); `refresh` keeps this node's view of a name changed
        # here while its read was in flight (that snapshot may predate the change)
        self._chain: dict[str, asyncio.Future[None]] = {}
        # pending turns per name that change this node's view on their own (place, unplace);
        # a name whose only pending turns adopt the store's placement (`_place_mine`) is not
        # counted: those turns read the same store, so a refresh may take its read of the name
        self._changing: dict[str, int] = {}
        self._ops = 0
        self._local = 0
        self._local_at: dict[str, int] = {}
        self._beating = asyncio.Lock()

    # -- identity and placement --------------------------------------------------------------

    def _resolve_name(self, hive: Hive) -> str:
        from hyperhive.names import validate_name

        name = self._given or os.environ.get(ENV) or hive.config.node.name or host_node_name()
        return validate_name(name)

    async def start(self, hive: Hive) -> None:
        await super().start(hive)
        self.node = self._resolve_name(hive)
        self.store = self._store_factory(hive) if self._store_factory else default_store(hive)
        # other processes write the agents table (PostgreSQL): follow it on every beat
        self.shared = getattr(hive.storage, "kind", "sqlite") != "sqlite"
        await self.store.open()
        self.secret = await self.store.secret()  # the hive-wide peer secret
        await self.refresh()
        for rec in hive.registry.all():  # a hive from before nodes: its agents are ours
            if rec.name not in self.placed:
                await self._place_mine(rec.name)
        await self.beat()
        hive.registry.on_change(self._registry_changed)
        hive.host_rpc.handle(Nodes)(self._nodes_verb)

    def owns(self, agent: str) -> bool:
        """Whether this node runs `agent` (an agent not placed anywhere yet is ours)."""
        return self.placed.get(agent, self.node) == self.node

    def owner(self, agent: str) -> str:
        return self.placed.get(agent, self.node)

    def is_live(self, node: str) -> bool:
        if node == self.node:
            return True
        row = self.rows.get(node)
        return row is not None and node not in self.lost

    def peer_url_of(self, node: str) -> str:
        row = self.rows.get(node)
        return row.peer_url if row is not None else ""

    def pick(self, wanted: str | None = None) -> str:
        """Where a new agent goes: `wanted` (must be a live node), else the live node with the
        most free memory."""
        if wanted is not None:
            if wanted not in self.rows and wanted != self.node:
                raise NotFound(f"no node {wanted!r} in this hive (see `hive nodes`)")
            if not self.is_live(wanted):
                raise Unavailable(f"node {wanted!r} is lost (no heartbeat): pick another")
            return wanted
        live = [r for r in self.rows.values() if self.is_live(r.name)]
        if not live:
            return self.node
        best = max(live, key=lambda r: (r.mem_free_mb, -r.agents, _neg(r.name)))
        return best.name

    def _touch(self, name: str) -> None:
        self._local += 1
        self._local_at[name] = self._local

    def _claim(self, name: str, *, adopt: bool = False) -> _Turn:
        """Take the next turn for a placement change of `name` (synchronously, when the change
        arises). `adopt`: the turn only takes the store's placement of a name this node has no
        view of (`_place_mine`)."""
        prev = self._chain.get(name)
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._chain[name] = turn
        if not adopt:
            self._changing[name] = self._changing.get(name, 0) + 1
            self._touch(name)
        return _Turn(prev, turn, adopt)

    async def _in_turn(
        self,
        name: str,
        claimed: _Turn,
        op: Callable[[], Awaitable[None]],
    ) -> None:
        prev, turn, adopt = claimed
        try:
            if prev is not None:
                await asyncio.wait([prev])  # its outcome is its own; only the order matters
            await op()
        finally:
            self._touch(name)
            turn.set_result(None)
            if self._chain.get(name) is turn:
                del self._chain[name]
            if not adopt:
                left = self._changing[name] - 1
                if left:
                    self._changing[name] = left
                else:
                    del self._changing[name]

    def _view_stands(self, name: str, began: int) -> bool:
        """Whether this node's view of `name` outranks a store read that began at `began`:
        the name changed here since, or a change of it is still in flight. A name this node
        has no view of, whose only pending turns adopt the store's placement, takes the read
        (those turns will read the same store; until they do, `owner` would otherwise fall back
        to this node and a status read in between would name the wrong node)."""
        if self._local_at.get(name, 0) > began:
            return True
        if name not in self._chain:
            return False
        return name in self.placed or name in self._changing

    async def place_new(self, agent: str, node: str) -> None:
        async def op() -> None:
            await self.store.place(agent, node, expect_free=True)
            self.placed[agent] = node

        await self._in_turn(agent, self._claim(agent), op)

    async def unplace(self, agent: str) -> None:
        await self._in_turn(agent, self._claim(agent), lambda: self._unplace(agent))

    async def _unplace(self, agent: str) -> None:
        await self.store.unplace(agent)
        self.placed.pop(agent, None)

    def _registry_changed(self, name: str) -> None:
        rec = self.hive.registry.get(name)
        if rec is not None and name not in self.placed:
            # registered here (the manager, an approved spawn) or by another node (seen by a
            # registry sync): the store says which; unplaced, it is ours
            op: Callable[[], Awaitable[None]] = lambda: self._place_mine(name)  # noqa: E731
        elif rec is None and self.placed.get(name) == self.node:
            op = lambda: self._unplace(name)  # noqa: E731
        else:
            return
        # claimed now, so a later place/unplace of the name waits for it
        claimed = self._claim(name, adopt=rec is not None)
        self._ops += 1
        self.hive.tasks.spawn(
            f"placement:{name}:{self._ops}",
            lambda: self._in_turn(name, claimed, op),
            critical=False,  # logged; the next heartbeat's refresh shows the store's truth
        )

    async def _place_mine(self, name: str) -> None:
        """Place `name` here unless it is placed already (another node's placement stands)."""
        if self.hive.registry.get(name) is None:
            return  # removed again before this turn came
        placed = await self.store.placements()
        if name not in placed:
            try:
                await self.store.place(name, self.node, expect_free=True)
                placed[name] = self.node
            except Conflict:  # placed elsewhere meanwhile: that node runs it
                placed = await self.store.placements()
        if name in placed:
            self.placed[name] = placed[name]
        if placed.get(name) not in (None, self.node):
            logger.info(
                "%s is placed on node %s", name, placed[name], extra={"action": "placed_elsewhere"}
            )

    # -- heartbeat and liveness ---------------------------------------------------------------

    async def beat(self) -> None:
        """Write this node's row. One beat at a time, its row built inside the lock: a beat
        that read an older state (no peer URL yet) can never land after a newer one."""
        async with self._beating:
            await self._beat()

    async def _beat(self) -> None:
        agents = sum(1 for n in self.placed.values() if n == self.node)
        await self.store.heartbeat(
            NodeRow(
                name=self.node,
                heartbeat_at=self._now(),
                started_at=self._started_at,
                load=load_average(),
                mem_free_mb=mem_free_mb(),
                agents=agents,
                peer_url=self.peer_url,
                dashboard_url=self.hive.dashboard_url,
            )
        )

    async def refresh(self) -> None:
        """Read every node's row and the placements; publish lost/back changes. On a shared
        database, also bring the registry up to what the other nodes changed."""
        async with self._refreshing:  # one at a time: an older read never lands last
            if self.shared:
                await self.hive.registry.sync()
            rows = {r.name: r for r in await self.store.nodes()}
            began = self._local
            placed = await self.store.placements()
            for name in set(placed) | set(self.placed):
                if self._view_stands(name, began):
                    placed.pop(name, None)  # changed here meanwhile: this node's view stands
                    if name in self.placed:
                        placed[name] = self.placed[name]
            self.placed = placed
            self.rows = rows
            self._seen_lost(rows)

    def _seen_lost(self, rows: dict[str, NodeRow]) -> None:
        bound = self.hive.config.node.lost_after_seconds
        now = self._now()
        lost = {n for n, r in rows.items() if n != self.node and now - r.heartbeat_at > bound}
        for n in sorted(lost - self.lost):
            self._publish_change(n, "node_lost")
        for n in sorted(self.lost - lost):
            self._publish_change(n, "node_back")
        self.lost = lost

    def _publish_change(self, node: str, kind: str) -> None:
        logger.warning("node %s: %s", node, kind, extra={"action": kind})
        self.hive.hub.publish(kind, node=node)
        for agent, n in sorted(self.placed.items()):
            if n == node and self.hive.registry.get(agent) is not None:
                self.hive.hub.publish("agent_updated", agent=agent, node=node)

    async def refresh_if_unknown(self, node: str) -> None:
        if not self.peer_url_of(node):
            await self.refresh()

    def beat_soon(self) -> None:
        self._beat_now.set()

    async def after_start(self) -> None:
        from hyperhive.core.nodeforward import install_forwarding

        self.forwarder = install_forwarding(self.hive, self)
        from hyperhive.core.noderelay import StatusRelay

        self.relay = StatusRelay(self.hive, self)
        self.relay.start()
        self.relay.push_all_soon()
        from hyperhive.core.eventrelay import EventRelay

        self.events = EventRelay(self.hive, self)
        self.events.start()
        self.hive.tasks.spawn("node-heartbeat", self._heartbeat_loop, restart=True)

    async def aclose(self) -> None:
        fwd = getattr(self, "forwarder", None)
        if fwd is not None:
            await fwd.aclose()
        store = getattr(self, "store", None)
        if store is not None and self._store_factory is None:
            await store.aclose()

    async def _heartbeat_loop(self) -> None:
        every = self.hive.config.node.heartbeat_seconds
        beats = 0
        while True:
            try:
                await self.beat()
                known = set(self.rows)
                await self.refresh()
                beats += 1
                if beats % FULL_PUSH_EVERY == 0 or set(self.rows) - known:
                    self.relay.push_all_soon()
            except Exception as exc:  # the database away for a while: keep the agents running
                logger.warning("heartbeat failed: %r", exc, extra={"action": "heartbeat_failed"})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._beat_now.wait(), every)
            self._beat_now.clear()

    # -- surfaces ----------------------------------------------------------------------------

    def infos(self) -> list[NodeInfo]:
        now = self._now()
        out = []
        for name in sorted(self.rows):
            r = self.rows[name]
            out.append(
                NodeInfo(
                    name=name,
                    live=self.is_live(name),
                    this=name == self.node,
                    heartbeat_at=iso(r.heartbeat_at),
                    heartbeat_age_seconds=round(max(0.0, now - r.heartbeat_at), 3),
                    started_at=iso(r.started_at),
                    load=r.load,
                    mem_free_mb=r.mem_free_mb,
                    agents=sum(1 for n in self.placed.values() if n == name),
                    peer_url=r.peer_url or None,
                    dashboard_url=r.dashboard_url or None,
                )
            )
        return out

    async def _nodes_verb(self, caller: Caller, req: Nodes) -> NodesOk:
        await self.refresh()
        return NodesOk(nodes=self.infos(), node=self.node)

    async def status_fields(self, agent: str) -> dict[str, Any]:
        node = self.owner(agent)
        out: dict[str, Any] = {"node": node}
        if node in self.lost:
            out["node_lost"] = True
        return out


def default_store(hive: Hive) -> NodeStore:
    """The nodes table in the hive's own database: its sqlite file, or the PostgreSQL database
    every node shares."""
    from hyperhive.core.store.backend import sqlite_database

    db = sqlite_database(hive.storage)
    if db is not None:
        from hyperhive.core.store.nodes_sqlite import SqliteNodeStore

        return SqliteNodeStore(db)
    from hyperhive.core.store.nodes_pg import PgNodeStore

    return PgNodeStore(hive.database_url)


def _neg(name: str) -> tuple[int, ...]:
    """Sorts names descending under `max` (so ties go to the alphabetically first)."""
    return tuple(-ord(c) for c in name)
