"""The whole hive seen from every node: each node pushes the status rows of the agents it runs
to the others (`NodeStore.publish`: PostgreSQL NOTIFY), and answers for another node's agent
with the last row that node pushed.

Pushed: when an event that changes an agent's status (`verbs_host.STATUS_EVENT_KINDS`) is
published here for an agent this node runs, its row is recomputed and pushed (changes are
coalesced per agent while a push is in flight), and every row again every `FULL_PUSH_EVERY` (core/nodes.py)
heartbeats and whenever another node appears (so a node that starts later, or missed a
notification while the database was away, catches up). Nothing is pushed while no other node
is live.

Received: the row is kept (`rows`) and an `agent_updated` event with `relayed=True` is
published here, so status subscribers and the dashboard redraw that agent; relayed events are
never pushed back.

Invariant: a row from another node is used only while that node is live; for a lost node the
local row (state `node lost`) answers.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING

from hyperhive.core.eventrelay import PREFIX as EVENTS_PREFIX
from hyperhive.core.events import HiveEvent
from hyperhive.wire.host import AgentStatusRow

if TYPE_CHECKING:
    from hyperhive.core.hive import Hive
    from hyperhive.core.nodes import NodesFeature

logger = logging.getLogger(__name__)


class StatusRelay:
    def __init__(self, hive: Hive, nodes: NodesFeature) -> None:
        self.hive = hive
        self.nodes = nodes
        self.rows: dict[str, AgentStatusRow] = {}  # agent → the row its node pushed last
        self._dirty: set[str] = set()
        self._wake = asyncio.Event()

    def start(self) -> None:
        from hyperhive.core.verbs_host import STATUS_EVENT_KINDS

        kinds = STATUS_EVENT_KINDS | {"budget_tripped", "budget_reset"}

        def listen(ev: HiveEvent) -> None:
            agent = ev.data.get("agent")
            if ev.kind in kinds and isinstance(agent, str) and not ev.data.get("relayed"):
                if self.nodes.owns(agent):
                    self._dirty.add(agent)
                    self._wake.set()

        self.hive.hub.add_listener(listen)
        self.nodes.store.subscribe(self._received)
        self.hive.tasks.spawn("node-status-push", self._push_loop, restart=True)

    def row(self, agent: str) -> AgentStatusRow | None:
        """The pushed row of an agent another live node runs, if any."""
        node = self.nodes.owner(agent)
        if node == self.nodes.node or not self.nodes.is_live(node):
            return None
        row = self.rows.get(agent)
        return row if row is not None and row.node == node else None

    def push_all_soon(self) -> None:
        mine = [a for a in self.hive.registry.names() if self.nodes.owns(a)]
        self._dirty.update(mine)
        self._wake.set()

    async def _push_loop(self) -> None:
        from hyperhive.core.status import status_row

        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._dirty = self._dirty, set()
            if not any(self.nodes.is_live(n) for n in self.nodes.rows if n != self.nodes.node):
                continue  # nobody else to tell (a single node, or every other one lost)
            for agent in sorted(batch):
                if self.hive.registry.get(agent) is None or not self.nodes.owns(agent):
                    continue
                try:
                    row = await status_row(self.hive, agent)
                    payload = {"o": self.nodes.node, "r": row.model_dump(mode="json")}
                    await self.nodes.store.publish(json.dumps(payload, separators=(",", ":")))
                except Exception as exc:  # the database away: the next beat pushes again
                    logger.warning("status push of %s failed: %r", agent, exc)

    def _received(self, payload: str) -> None:
        if payload.startswith(EVENTS_PREFIX):
            return  # relayed events (core/eventrelay.py)
        try:
            doc = json.loads(payload)
            origin = str(doc["o"])
            row = AgentStatusRow.model_validate(doc["r"])
        except (ValueError, KeyError, TypeError) as exc:
            logger.warning("a bad status push: %r", exc)
            return
        if origin == self.nodes.node:
            return
        self.rows[row.name] = row
        self.hive.hub.publish("agent_updated", agent=row.name, node=origin, relayed=True)
