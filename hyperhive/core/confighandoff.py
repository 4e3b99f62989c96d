"""Config repos and approvals across nodes (docs/multihost.md, "Config repos across nodes"):
every approval of a hive on a shared (PostgreSQL) database names the ONE node that acts on it,
and the commit it pins travels to that node as a git bundle in the database.

Where repos live: the manager edits its agents' proposed repos in its own node's home
(`configs/<name>`, bound at `/agents`), so that node is the *config home*. A repo another
node creates (an operator `spawn --node B` seeds it on B) is published as a bundle
(`config_mirrors`) and imported by the manager's node on its next pass, so the manager always
proposes against a repo of its own. Applied configs live on the agent's node (its sandbox
reads them).

Who acts (`config_handoffs.node`, fixed at request time):
- `apply_commit`: the node the agent is placed on (when it is registered), else the requesting
  node;
- `spawn`: the node the request named (`request_spawn(node=...)`), else the requesting node;
- `init_config`: the requesting node (the repo must be where the manager is).
When the acting node is not the requesting one and a commit is pinned, the request stores a
bundle of it (its whole history: the receiver may share nothing with this repo).

Approving: from any node. The approving node decides (in the database, once), then forwards
`approve` to the acting node over the peer RPC; there, the `approve` of a row already approved
whose hand-off waits on that node acts on it as on one host, so the answer carries the
outcome. If the acting node is lost or unreachable the hand-off waits: the acting node finds
it (`due`: waiting + approved in the database) on its next pass — every
`[node] heartbeat_seconds`, and at start — and acts then.

Acting (`prepare` before, `finished` after, on the acting node): a bundle is checked to hold
exactly the pinned sha before its objects are added to the node's own copy of the repo (made
from the bundle when missing), then the normal apply path validates and applies it. A
hand-off is finished once (`UPDATE ... WHERE state = 'waiting'`), so a duplicate delivery does
nothing; an `apply_commit` is never applied when a later `apply_commit` of the same agent is
already applied or approved (`superseded`): a stale delivery never rolls an agent back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from hyperhive.clock import iso
from hyperhive.core import gitbundle
from hyperhive.core.configs import ConfigRepos
from hyperhive.core.events import HiveEvent
from hyperhive.core.gitrepo import BRANCH
from hyperhive.core.nodeforward import FORWARDED
from hyperhive.errors import ApprovalFailed, Conflict, HiveError, Unavailable
from hyperhive.wire.approvals import ApprovalKind, ApprovalRow, ApprovalStatus

if TYPE_CHECKING:
    from hyperhive.core.hive import Hive
    from hyperhive.core.nodes import NodesFeature
    from hyperhive.core.store.base import ApprovalStore
    from hyperhive.core.store.pg.handoffs import HandoffRow, PgHandoffStore

logger = logging.getLogger(__name__)

Act = Callable[[ApprovalRow], Awaitable[object]]


class Duplicate(Exception):
    """This hand-off was finished already (another delivery acted on it)."""


class ConfigHandoff:
    def __init__(
        self,
        hive: Hive,
        configs: ConfigRepos,
        nodes: NodesFeature,
        store: PgHandoffStore,
        approvals: ApprovalStore,
    ) -> None:
        self.hive = hive
        self.configs = configs
        self.nodes = nodes
        self.store = store
        self.approvals = approvals
        self._wake = asyncio.Event()
        self._mirrored: set[str] = set()

    @property
    def me(self) -> str:
        return self.nodes.node

    def _runs_manager(self) -> bool:
        manager = self.hive.registry.manager()
        return manager is not None and self.nodes.owner(manager.name) == self.me

    def _owner(self, name: str) -> tuple[int, int] | None:
        return self.configs.repo_owner(name) if self.configs.repo_owner else None

    # -- requests -----------------------------------------------------------------------------

    async def acting_node(self, kind: ApprovalKind, agent: str, wanted: str | None) -> str:
        if kind == ApprovalKind.APPLY_COMMIT and self.hive.registry.get(agent) is not None:
            if agent not in self.nodes.placed:
                await self.nodes.refresh()
            return self.nodes.owner(agent)
        if kind == ApprovalKind.SPAWN and wanted:
            await self.nodes.refresh()
            return self.nodes.pick(wanted)  # refused if unknown or lost
        return self.me

    async def record(self, row: ApprovalRow, node: str) -> None:
        """Store who acts on `row`, with a bundle of its pinned commit when that is elsewhere."""
        bundle = None
        if node != self.me and row.fetched_sha is not None:
            bundle = await gitbundle.create_bundle(
                self.configs.repo(row.agent), [f"refs/tags/proposal/{row.id}"]
            )
        await self.store.add(
            approval_id=row.id,
            agent=row.agent,
            kind=row.kind,
            node=node,
            origin=self.me,
            sha=row.fetched_sha,
            bundle=bundle,
            at=iso(self.hive.clock.now()),
        )

    # -- approving ----------------------------------------------------------------------------

    async def act_elsewhere(self, row: ApprovalRow) -> ApprovalRow | None:
        """After `row` was approved here: when another node acts on it, have it act (the
        forwarded `approve` of an approved row) and answer its outcome; None: act here."""
        if FORWARDED.get() is not None:
            return None
        h = await self.store.get(row.id)
        if h is None or h.node == self.me:
            return None
        body = {"cmd": "approve", "id": row.id, "note": row.note or None}
        try:
            answer = await self.nodes.forwarder.send(h.node, body)
            final = ApprovalRow.model_validate(answer["approval"])
            # the acting node told the requester and published `approval_resolved`, which
            # reaches this node's hub (its dashboard) relayed, once (core/eventrelay.py)
            return final
        except Unavailable as exc:  # away: it acts when it is back (`due`)
            logger.warning(
                "approval #%d approved; node %s acts on it when it is back (%s)",
                row.id,
                h.node,
                exc,
                extra={"action": "approval_handed_off", "agent": row.agent},
            )
        except Conflict:  # its own pass acted on it first: that outcome is the answer
            done = await self.approvals.get(row.id)
            if done is None or done.status == ApprovalStatus.PENDING:
                raise
            if done.status == ApprovalStatus.FAILED:
                raise ApprovalFailed(
                    f"approval #{row.id} ({row.kind} of {row.agent}) {done.note}"
                ) from None
            return done
        self.hive.hub.publish("approval_handed_off", id=row.id, agent=row.agent, node=h.node)
        return row

    async def forwarded_here(self, row: ApprovalRow) -> bool:
        """A forwarded `approve` of a row another node approved, which this node acts on."""
        if FORWARDED.get() is None or row.status != ApprovalStatus.APPROVED:
            return False
        h = await self.store.get(row.id)
        return h is not None and h.node == self.me and h.state == "waiting"

    async def diff_elsewhere(self, row: ApprovalRow) -> str | None:
        """The diff of a commit pinned on another node (asked of that node), or None when the
        commit is here."""
        sha = row.fetched_sha
        repo = self.configs.repo(row.agent)
        if sha is None or (repo.exists() and await repo.has_commit(sha)):
            return None
        h = await self.store.get(row.id)
        if h is None or h.origin == self.me:
            return None
        note = f"# commit {sha[:12]} is in {row.agent}'s config repo on node {h.origin}\n"
        if FORWARDED.get() is not None:
            return note
        try:
            answer = await self.nodes.forwarder.send(h.origin, {"cmd": "approval", "id": row.id})
        except HiveError as exc:
            return note + f"# its diff could not be read there: {exc}\n"
        diff = answer.get("diff")
        return diff if isinstance(diff, str) else note

    # -- acting -------------------------------------------------------------------------------

    async def prepare(self, row: ApprovalRow) -> str | None:
        """Before acting on `row` here: the pinned commit into this node's repo (from the
        bundle), or a note why it must not be applied. `Duplicate` if already finished."""
        h = await self.store.get(row.id)
        if h is None:
            return None
        if h.state != "waiting":
            raise Duplicate(f"approval #{row.id} was handed off already ({h.state})")
        if row.kind == ApprovalKind.APPLY_COMMIT:
            newer = await self.store.newer(row.agent, row.id)
            if newer is not None:
                return f"superseded by #{newer}: not applied (never rolled back)"
        if h.sha is not None and h.has_bundle:
            await self._fetch(h)
        return None

    async def _fetch(self, h: HandoffRow) -> None:
        assert h.sha is not None
        repo = self.configs.repo(h.agent)
        if repo.exists() and await repo.has_commit(h.sha):
            return
        data = await self.store.bundle(h.approval_id)
        if data is None:
            raise HiveError(f"approval #{h.approval_id}: its bundle is gone")
        ref = f"refs/tags/proposal/{h.approval_id}"
        async with self.configs.lock(h.agent):
            if repo.exists():
                await gitbundle.unbundle(repo, data, {ref: h.sha})
                await repo.tag(f"proposal/{h.approval_id}", h.sha, force=True)
            else:  # the manager's uid owns it only where the manager edits it
                owner = self._owner(h.agent) if self._runs_manager() else None
                await gitbundle.repo_from_bundle(repo, data, {ref: h.sha}, owner)
                self.configs._link(h.agent)
        logger.info(
            "fetched %s's commit %s from node %s (approval #%d)",
            h.agent,
            h.sha[:12],
            h.origin,
            h.approval_id,
            extra={"action": "config_fetched", "agent": h.agent},
        )

    async def place_here(self, name: str) -> bool:
        """Place a new agent on this node before it is registered (`Conflict` if it is placed
        elsewhere); False if it was placed here already."""
        await self.nodes.refresh()
        if self.nodes.placed.get(name) == self.me:
            return False
        await self.nodes.place_new(name, self.me)
        return True

    async def finished(self, aid: int, state: str) -> None:
        await self.store.finish(aid, state, iso(self.hive.clock.now()))

    async def dropped(self, aid: int) -> None:
        with contextlib.suppress(HiveError):
            await self.store.finish(aid, "dropped", iso(self.hive.clock.now()))

    # -- the pass: hand-offs due here, repos to mirror ----------------------------------------

    def start(self, act: Act) -> None:
        self._act = act

        def listen(ev: HiveEvent) -> None:
            if ev.kind == "config_repo_created":
                agent = ev.data.get("agent")
                if isinstance(agent, str):
                    self._mirrored.discard(agent)
                self._wake.set()

        self.hive.hub.add_listener(listen)
        self.hive.tasks.spawn("config-handoffs", self._loop, restart=True)

    async def _loop(self) -> None:
        every = self.hive.config.node.heartbeat_seconds
        while True:
            try:
                await self.run_once()
            except Exception as exc:  # the database away: the next pass tries again
                logger.warning("config hand-off pass failed: %r", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), every)
            self._wake.clear()

    async def run_once(self) -> None:
        for h in await self.store.due(self.me):
            row = await self.approvals.get(h.approval_id)
            if row is None:
                continue
            try:
                await self._act(row)
            except Exception as exc:  # its row is `failed` with the reason
                logger.warning("hand-off #%d: %s", h.approval_id, exc)
        await self._publish_mirrors()
        await self._import_mirrors()

    async def _publish_mirrors(self) -> None:
        """Repos this node made for agents placed here while the manager runs elsewhere."""
        manager = self.hive.registry.manager()
        if manager is None or self.nodes.owner(manager.name) == self.me:
            return
        stored = await self.store.mirrors()
        for name in self.configs.repo_names():
            if name in self._mirrored or not self.nodes.owns(name):
                continue
            if name in stored and stored[name][0] != self.me:
                self._mirrored.add(name)  # made elsewhere: not ours to publish
                continue
            repo = self.configs.repo(name)
            head = await repo.branch_head()
            if head is None:
                continue
            if stored.get(name) != (self.me, head):
                refs = [f"refs/heads/{BRANCH}"]
                if await repo.tag_sha("seed") is not None:
                    refs.append("refs/tags/seed")
                data = await gitbundle.create_bundle(repo, refs)
                await self.store.put_mirror(name, self.me, head, data, iso(self.hive.clock.now()))
            self._mirrored.add(name)

    async def _import_mirrors(self) -> None:
        """On the manager's node: a repo of its own for every agent whose repo is elsewhere."""
        if not self._runs_manager():
            return
        for name, (node, _sha) in sorted((await self.store.mirrors()).items()):
            if node == self.me or self.configs.has_repo(name):
                continue
            if self.hive.registry.get(name) is None:
                continue  # destroyed (or purged): not brought back
            got = await self.store.mirror_bundle(name)
            if got is None:
                continue
            head, data = got
            want = {f"refs/heads/{BRANCH}": head}
            seed = (await gitbundle.bundle_heads(self.hive.paths.home, data)).get("refs/tags/seed")
            if seed is not None:
                want["refs/tags/seed"] = seed
            repo = self.configs.repo(name)
            owner = self._owner(name)
            async with self.configs.lock(name):
                if repo.exists() or repo.path.exists():
                    continue
                await gitbundle.repo_from_bundle(repo, data, want, owner)
                self.configs._link(name)
            logger.info(
                "imported %s's config repo from node %s at %s",
                name,
                node,
                head[:12],
                extra={"action": "config_mirrored", "agent": name},
            )
            self.hive.hub.publish("config_repo_created", agent=name, sha=head, node=node)


def handoff_for(hive: Hive, configs: ConfigRepos) -> ConfigHandoff | None:
    """The hand-off of a hive on a shared database with the nodes feature; else None (one
    host: every approval acts where it is made, as before)."""
    if getattr(hive.storage, "kind", "sqlite") != "postgresql" or not hive.runs("nodes"):
        return None
    from hyperhive.core.nodes import NodesFeature
    from hyperhive.core.store.pg.handoffs import PgHandoffStore

    nodes = hive.feature("nodes")
    assert isinstance(nodes, NodesFeature)
    db = getattr(hive.storage, "db", None)
    if db is None:
        return None
    return ConfigHandoff(hive, configs, nodes, PgHandoffStore(db), hive.storage.approvals)
