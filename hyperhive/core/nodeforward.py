"""Every command from any node: host verbs (and the manager's lifecycle tools) for an agent
placed on another node are forwarded to that node over HTTP (`client/peer.py`, authenticated
with the hive-wide secret); the owning node runs them as its own.

What is forwarded: lifecycle verbs (start/stop/restart/kill/destroy/rebuild/purge, set_paused,
logs) and `spawn` onto another node. `agent_status` merges: each live node answers for its own
agents; agents of a lost node are answered here, as `node lost`. Broker verbs (send, inbox,
questions, approvals) are not forwarded: they work through the shared database (an approval's
action runs on the node it belongs to: `core/confighandoff.py`). `shell_argv`
for an agent elsewhere is refused in one line naming the node (a shell needs the sandbox's
host).

Invariants: a request that arrived forwarded (`FORWARDED` set by the peer server) is never
forwarded again (two nodes that disagree about a placement answer an error, never loop); a
remote failure comes back in the one error shape, as the error it was.
"""

from __future__ import annotations

import contextvars
import logging
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from hyperhive.client.peer import PeerClient
from hyperhive.core.rpc import Caller, Handler, Result
from hyperhive.errors import NotSupported, Unavailable
from hyperhive.names import validate_name
from hyperhive.wire.base import Ok, Request
from hyperhive.wire.host import (
    AgentStatus,
    AgentStatusOk,
    AgentStatusRow,
    Destroy,
    Kill,
    Rebuild,
    Restart,
    Scope,
    SetPaused,
    Spawn,
    Start,
    Stop,
)
from hyperhive.wire.lifecycle import (
    Logs,
    MgrKill,
    MgrRestart,
    MgrStart,
    MgrUpdate,
    Purge,
    ShellArgv,
)

if TYPE_CHECKING:
    from hyperhive.core.hive import Hive
    from hyperhive.core.nodes import NodesFeature

logger = logging.getLogger(__name__)

# set (to the asking node's name) while the peer server runs a forwarded request
FORWARDED: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "hive_forwarded", default=None
)

ONE_AGENT_VERBS: tuple[type[Request], ...] = (
    Restart,
    Kill,
    Destroy,
    Rebuild,
    Purge,
    SetPaused,
    Logs,
)
# the manager's tools → the host verb the owning node runs (after the guard ran here)
MANAGER_VERBS: dict[type[Request], str] = {
    MgrStart: "start",
    MgrRestart: "restart",
    MgrKill: "kill",
    MgrUpdate: "rebuild",
}


class Forwarder:
    def __init__(self, hive: Hive, nodes: NodesFeature) -> None:
        self.hive = hive
        self.nodes = nodes
        self._client: PeerClient | None = None

    async def client(self) -> PeerClient:
        if self._client is None:
            self._client = PeerClient(await self.nodes.store.secret(), self.nodes.node)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def send(self, node: str, body: dict[str, Any]) -> dict[str, Any]:
        await self.nodes.refresh_if_unknown(node)
        if node in self.nodes.lost:
            raise Unavailable(f"node {node} is lost (no heartbeat): {body.get('cmd')} cannot run")
        client = await self.client()
        logger.info(
            "forwarding %s to node %s",
            body.get("cmd"),
            node,
            extra={"action": "forwarded", "agent": body.get("name")},
        )
        return await client.call(node, self.nodes.peer_url_of(node), body)

    async def remote_owner(self, name: str) -> str | None:
        """The other node that runs `name`, or None when this one does (or the request was
        forwarded here: then this node answers, whatever it thinks). A name this node has not
        seen placed yet is looked up in the store first (another node may just have placed it)."""
        if FORWARDED.get() is not None:
            return None
        if name not in self.nodes.placed:
            await self.nodes.refresh()
        owner = self.nodes.owner(name)
        return None if owner == self.nodes.node else owner

    # -- the wrappers ------------------------------------------------------------------------

    async def one_agent(self, caller: Caller, req: Any, inner: Handler) -> Result:
        node = await self.remote_owner(validate_name(req.name))
        if node is None:
            return await inner(caller, req)
        return await self.send(node, req.model_dump(mode="json", exclude_none=True))

    async def scoped(self, caller: Caller, req: Any, inner: Handler) -> Result:
        groups: dict[str | None, list[str]] = defaultdict(list)
        for n in req.scope.agent_names:
            groups[await self.remote_owner(validate_name(n))].append(n)
        for node, names in groups.items():
            part = req.model_copy(update={"scope": Scope(agent_names=names)})
            if node is None:
                answer = await inner(caller, part)
                if isinstance(answer, dict) and answer.get("ok") is False:
                    return answer
            else:
                await self.send(node, part.model_dump(mode="json", exclude_none=True))
        return Ok()

    async def shell(self, caller: Caller, req: Any, inner: Handler) -> Result:
        node = await self.remote_owner(validate_name(req.name))
        if node is None:
            return await inner(caller, req)
        raise NotSupported(f"{req.name} runs on node {node}: run `hive shell {req.name}` there")

    async def spawn(self, caller: Caller, req: Any, inner: Handler) -> Result:
        name = validate_name(req.name)
        if FORWARDED.get() is not None:
            target = self.nodes.node
        else:
            await self.nodes.refresh()
            target = self.nodes.pick(req.node)
        if target != self.nodes.node:
            answer = await self.send(target, req.model_dump(mode="json", exclude_none=True))
            await self.nodes.refresh()  # its placement (and, shared, its registry row)
            return answer
        await self.nodes.place_new(name, target)
        try:
            return await inner(caller, req.model_copy(update={"node": None}))
        except BaseException:
            await self.nodes.unplace(name)
            raise

    async def manager(self, caller: Caller, req: Any, inner: Handler) -> Result:
        node = await self.remote_owner(validate_name(req.name))
        if node is None:
            return await inner(caller, req)
        self.hive.lifecycle.guard_manager_target(caller, req.name)
        cmd = MANAGER_VERBS[type(req)]
        body: dict[str, Any] = {"cmd": cmd}
        if cmd == "start":
            body["scope"] = {"agent_names": [req.name]}
        else:
            body["name"] = req.name
        if getattr(req, "generation", None) is not None:
            body["generation"] = req.generation
        await self.send(node, body)
        return Ok()

    async def status(self, caller: Caller, req: Any, inner: Handler) -> Result:
        """Each live node's own rows; the rest (this node's, a lost node's) from here."""
        if FORWARDED.get() is not None:
            return await inner(caller, req)
        await self.nodes.refresh()
        local = await inner(caller, req)
        assert isinstance(local, AgentStatusOk)
        rows = {r.name: r for r in local.agent_statuses}
        remote = sorted(
            {
                n
                for n in self.nodes.placed.values()
                if n != self.nodes.node and self.nodes.is_live(n)
            }
        )
        for node in remote:
            try:
                answer = await self.send(node, {"cmd": "agent_status"})
            except Exception as exc:
                logger.warning("status from node %s failed: %r", node, exc)
                continue
            for raw in answer.get("agent_statuses", []):
                row = AgentStatusRow.model_validate(raw)
                if self.nodes.owner(row.name) == node:
                    rows[row.name] = row
        return AgentStatusOk(agent_statuses=[rows[n] for n in sorted(rows)])


def install_forwarding(hive: Hive, nodes: NodesFeature) -> Forwarder:
    fwd = Forwarder(hive, nodes)
    h = hive.host_rpc
    for model in ONE_AGENT_VERBS:
        h.wrap(model, fwd.one_agent)
    h.wrap(Start, fwd.scoped)
    h.wrap(Stop, fwd.scoped)
    h.wrap(ShellArgv, fwd.shell)
    h.wrap(Spawn, fwd.spawn)
    h.wrap(AgentStatus, fwd.status)
    if hive.runs("lifecycle"):
        for model in MANAGER_VERBS:
            hive.agent_rpc.wrap(model, fwd.manager)
    return fwd
