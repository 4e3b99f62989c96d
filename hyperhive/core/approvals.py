"""Operator approvals (`hive.approvals`): the gate in front of spawning agents and changing
their config.

Flow: the manager (or the operator) *requests* — `spawn`, `init_config` or `apply_commit` —
and gets the approval id at once. The operator approves or denies (host socket, CLI,
dashboard: all through `approve`/`deny`). On approve the core acts at once:

- `init_config`: seed the agent's config repo from the template → `config_ready{agent}`.
- `spawn`: seed the repo if absent (a kept repo — a tombstone's — is reused, never
  overwritten), make sure a config is applied (the pinned commit if one was pinned, else keep
  what is applied, else the `seed` commit), then `hive.lifecycle.spawn_agent` →
  `spawned{agent, ok, note}`.
- `apply_commit`: validate and apply exactly the commit pinned at request time as
  `refs/tags/proposal/<id>` (its sha is in the row: moving the branch or the tag afterwards
  changes nothing), tag `deployed/<id>`, then `hive.lifecycle.rebuild` if the agent exists →
  `rebuilt{agent, ok, note}`.

Every resolution sends `approval_resolved{id, agent, kind, commit_ref, status, note}` to the
requester's inbox (`operator` for the operator) and publishes `approval_resolved` on the hub.

Invariants:
- Decided once, in the database (`SqliteApprovalStore.decide`): of two concurrent approves
  (or approve/deny/cancel) exactly one wins; the others get a `Conflict` naming the status.
- Acting runs to completion even if the caller goes away (`Inflight`), one action per agent
  at a time; any failure leaves the row `failed` with the reason in `note`, and a refused
  commit leaves the applied config untouched.
- A pending approval is an open thread of its requester (`a:<id>`); `cancel_thread` on it
  resolves it `cancelled`.
- Across nodes (a shared database, `core/confighandoff.py`): each approval names the node that
  acts on it; `approve` on another node is forwarded there, the pinned commit travels as a
  bundle, and a node that was away acts on what was approved meanwhile when it is back.
- Not yet on one host (sqlite): an action interrupted by a daemon crash stays `approved`
  without its effect (on a shared database the hand-off is acted on at the next start).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import TYPE_CHECKING, Any, Protocol, cast

from pygments import highlight  # type: ignore[import-untyped]
from pygments.formatters import HtmlFormatter  # type: ignore[import-untyped]
from pygments.lexers import DiffLexer  # type: ignore[import-untyped]

from hyperhive.clock import iso
from hyperhive.core.confighandoff import ConfigHandoff, Duplicate, handoff_for
from hyperhive.core.configs import ConfigRepos
from hyperhive.core.deadlines import Inflight
from hyperhive.core.feature import BaseFeature
from hyperhive.core.followups import CancelOutcome
from hyperhive.core.gitrepo import check_sha
from hyperhive.core.store.base import ApprovalStore
from hyperhive.errors import (
    ApprovalFailed,
    BadRequest,
    Conflict,
    HiveError,
    NotFound,
    NotSupported,
)
from hyperhive.names import validate_name, validate_new_name
from hyperhive.wire.approvals import (
    DESCRIPTION_MAX,
    NOTE_MAX,
    ApprovalKind,
    ApprovalRow,
    ApprovalStatus,
)
from hyperhive.wire.attention import AttentionItem
from hyperhive.wire.followups import FollowupView

if TYPE_CHECKING:
    from hyperhive.core.hive import Hive

logger = logging.getLogger(__name__)

RESOLVED_IN_LISTING = 50  # v1 `pending` also shows this many recently resolved rows
_DIFF_CACHE = 64


class LifecycleOps(Protocol):
    """What approvals need of the lifecycle (core/lifecycle.py)."""

    async def spawn_agent(self, name: str, *, requested_by: str | None = None) -> None: ...

    async def rebuild(self, name: str) -> None: ...


def _clean(text: str | None, limit: int, what: str) -> str:
    out = (text or "").strip()
    if len(out) > limit:
        raise BadRequest(f"the {what} is {len(out)} characters; the limit is {limit}")
    return out


class ApprovalsFeature(BaseFeature):
    """Approvals (`hive.approvals`), acting through the config repos and, when the hive runs
    one, the lifecycle (without it an approved spawn only registers the agent)."""

    name = "approvals"
    after: tuple[str, ...] = ("configs",)

    def __init__(self, configs: ConfigRepos, lifecycle: LifecycleOps | None = None) -> None:
        self.configs = configs
        self.lifecycle = lifecycle
        self._inflight = Inflight()
        self._locks: dict[str, asyncio.Lock] = {}
        self._diffs: dict[tuple[str, str | None, str], str] = {}
        self._acting: dict[int, asyncio.Future[ApprovalRow]] = {}
        self.handoff: ConfigHandoff | None = None

    async def start(self, hive: Hive) -> None:
        await super().start(hive)
        self.store: ApprovalStore = hive.storage.approvals
        hive.followups.add_source("a", self._open_followups, self._cancel_followup)
        self.handoff = handoff_for(hive, self.configs)
        from hyperhive.core.verbs_approvals import register

        register(hive, self)

    async def after_start(self) -> None:
        if self.handoff is not None:
            self.handoff.start(lambda row: self._run_act(row, row.note))

    async def aclose(self) -> None:
        await self._inflight.aclose(timeout=60.0)

    async def status_fields(self, agent: str) -> dict[str, Any]:
        sha = self.configs.deployed_sha(agent)
        return {"deployed_sha": sha} if sha else {}

    # -- requests -----------------------------------------------------------------------------

    async def request_spawn(
        self, name: str, *, requested_by: str, description: str = "", node: str | None = None
    ) -> ApprovalRow:
        """Queue a spawn. A name with a kept config repo (a tombstone, or one seeded by
        `init_config`) reuses it: when nothing of it is applied yet its `main` head is pinned
        and is what gets applied."""
        validate_new_name(name)
        desc = _clean(description, DESCRIPTION_MAX, "description")
        if self.hive.registry.get(name) is not None:
            raise Conflict(
                f'agent "{name}" already exists; change its config with request_apply_commit'
            )
        commit_ref, sha = "", None
        if self.configs.has_repo(name) and not self.configs.has_applied(name):
            sha = await self.configs.head(name)
            commit_ref = "main" if sha else ""
        return await self._insert(
            name, ApprovalKind.SPAWN, requested_by, desc, commit_ref, sha, node=node
        )

    async def request_init_config(
        self, name: str, *, requested_by: str, description: str = ""
    ) -> ApprovalRow:
        validate_new_name(name)
        desc = _clean(description, DESCRIPTION_MAX, "description")
        if self.configs.has_repo(name):
            raise Conflict(
                f"{name} already has a config repo: edit it at /agents/{name}, commit, and "
                "request_apply_commit"
            )
        return await self._insert(name, ApprovalKind.INIT_CONFIG, requested_by, desc, "", None)

    async def request_apply_commit(
        self, agent: str, sha: str, *, requested_by: str, description: str = ""
    ) -> ApprovalRow:
        """Queue applying commit `sha` of `agent`'s repo, pinned now as `proposal/<id>`."""
        validate_name(agent)
        desc = _clean(description, DESCRIPTION_MAX, "description")
        given = sha.strip()
        check_sha(given)
        if not self.configs.has_repo(agent):
            raise NotFound(f"{agent} has no config repo yet (request_init_config first)")
        full = await self.configs.resolve(agent, given)
        return await self._insert(agent, ApprovalKind.APPLY_COMMIT, requested_by, desc, given, full)

    async def _insert(
        self,
        agent: str,
        kind: ApprovalKind,
        requested_by: str,
        description: str,
        commit_ref: str,
        sha: str | None,
        node: str | None = None,
    ) -> ApprovalRow:
        acting = None
        if self.handoff is not None:  # refuses an unknown or lost node before anything is stored
            acting = await self.handoff.acting_node(kind, agent, node)
        elif node and not (self.hive.runs("nodes") and node == _node_name(self.hive)):
            raise NotSupported(f"no node {node!r}: this hive runs on one host")
        row = await self.store.insert(
            agent=agent,
            kind=kind.value,
            requested_by=requested_by,
            requested_at=iso(self.hive.clock.now()),
            description=description,
            commit_ref=commit_ref,
            fetched_sha=sha,
        )
        step = "pin"
        try:
            if sha is not None:  # pin: the commit stays reachable whatever happens to the branch
                await self.configs.repo(agent).tag(f"proposal/{row.id}", sha, force=True)
            if self.handoff is not None and acting is not None:
                step = "hand-off"
                await self.handoff.record(row, acting)
        except HiveError as exc:
            await self.store.decide(
                row.id, ApprovalStatus.FAILED, iso(self.hive.clock.now()), f"{step} failed: {exc}"
            )
            raise
        logger.info(
            "approval #%d requested by %s: %s %s",
            row.id,
            requested_by,
            kind.value,
            agent,
            extra={"action": "approval_added", "agent": agent},
        )
        self.hive.hub.publish("approval_added", **row.model_dump(exclude_none=True))
        return row

    # -- reading ------------------------------------------------------------------------------

    async def get(self, aid: int) -> ApprovalRow:
        row = await self.store.get(aid)
        if row is None:
            raise NotFound(f"no approval #{aid}")
        return row

    async def pending(self) -> list[ApprovalRow]:
        return await self.store.pending()

    async def attention(self) -> list[AttentionItem]:
        """Pending approvals, for the dashboard's attention bar."""
        n = len(await self.store.pending())
        return [
            AttentionItem(kind="approvals", count=n, label="pending approvals", href="#approvals")
        ]

    async def listing(self, resolved: int = RESOLVED_IN_LISTING) -> list[ApprovalRow]:
        """Pending approvals plus the newest `resolved` resolved ones, oldest first."""
        return await self.store.recent(resolved)

    async def diff(self, aid: int) -> str | None:
        """The plain unified diff a pending approval would apply (applied → pinned commit);
        None when it applies no commit or is no longer pending."""
        row = await self.get(aid)
        if not row.pending or row.fetched_sha is None:
            return None
        if row.kind not in (ApprovalKind.APPLY_COMMIT, ApprovalKind.SPAWN):
            return None
        if self.handoff is not None:
            away = await self.handoff.diff_elsewhere(row)
            if away is not None:
                return away
        key = (row.agent, self.configs.applied_sha(row.agent), row.fetched_sha)
        cached = self._diffs.get(key)
        if cached is None:
            cached = await self.configs.diff(row.agent, row.fetched_sha)
            if len(self._diffs) >= _DIFF_CACHE:
                self._diffs.pop(next(iter(self._diffs)))
            self._diffs[key] = cached
        return cached

    async def diff_html(self, aid: int) -> str | None:
        """`diff(aid)` highlighted by Pygments (classes `gi`/`gd`/`gu`/`gh`; CSS: `diff_css`)."""
        text = await self.diff(aid)
        if text is None:
            return None
        return cast(str, highlight(text, DiffLexer(), HtmlFormatter(cssclass="hh-diff")))

    @staticmethod
    def diff_css() -> str:
        return cast(str, HtmlFormatter(cssclass="hh-diff").get_style_defs(".hh-diff"))

    # -- resolving ----------------------------------------------------------------------------

    async def approve(self, aid: int, note: str | None = None) -> ApprovalRow:
        """Approve and act at once. `NotFound`/`Conflict` for an unknown or resolved id;
        `ApprovalFailed` (row now `failed`) when acting fails. Returns the final row."""
        text = _clean(note, NOTE_MAX, "note")
        row, won = await self.store.decide(
            aid, ApprovalStatus.APPROVED, iso(self.hive.clock.now()), text
        )
        handoff = self.handoff
        if not won and not (handoff is not None and await handoff.forwarded_here(row)):
            raise self._already(row)
        if won and handoff is not None:  # acted on by another node: it answers the outcome
            moved = await handoff.act_elsewhere(row)
            if moved is not None:
                return moved
        logger.info(
            "approval #%d approved: %s %s",
            aid,
            row.kind,
            row.agent,
            extra={"action": "approval_approved", "agent": row.agent},
        )
        final = await self._run_act(row, row.note)
        if final.status == ApprovalStatus.FAILED:
            raise ApprovalFailed(f"approval #{aid} ({row.kind} of {row.agent}) {final.note}")
        return final

    async def deny(self, aid: int, note: str | None = None) -> ApprovalRow:
        text = _clean(note, NOTE_MAX, "note")
        row, won = await self.store.decide(
            aid, ApprovalStatus.DENIED, iso(self.hive.clock.now()), text
        )
        if not won:
            raise self._already(row)
        await self._dropped(row)
        await self._resolved(row)
        return row

    async def cancel(self, aid: int, requested_by: str) -> tuple[ApprovalRow, bool]:
        """Withdraw one's own pending request; (row, False) if it was already resolved."""
        row, won = await self.store.decide(
            aid,
            ApprovalStatus.CANCELLED,
            iso(self.hive.clock.now()),
            f"cancelled by {requested_by}",
            requested_by=requested_by,
        )
        if won:
            await self._dropped(row)
            await self._resolved(row)
        return row, won

    async def _dropped(self, row: ApprovalRow) -> None:
        if self.handoff is not None:
            await self.handoff.dropped(row.id)

    @staticmethod
    def _already(row: ApprovalRow) -> Conflict:
        why = f": {row.note}" if row.note else ""
        return Conflict(f"approval #{row.id} is already {row.status}{why}")

    # -- acting -------------------------------------------------------------------------------

    def _lock(self, agent: str) -> asyncio.Lock:
        return self._locks.setdefault(agent, asyncio.Lock())

    async def _run_act(self, row: ApprovalRow, note: str) -> ApprovalRow:
        """Act on approved `row` once per process (a hand-off found due while `approve` acts
        on it waits for that outcome)."""
        fut = self._acting.get(row.id)
        if fut is None:
            fut = asyncio.ensure_future(self._inflight.run(self._act(row, note)))
            self._acting[row.id] = fut
            fut.add_done_callback(lambda _f: self._acting.pop(row.id, None))
        return await asyncio.shield(fut)

    async def _act(self, row: ApprovalRow, operator_note: str) -> ApprovalRow:
        fetched: str | None = None
        skipped: str | None = None
        try:
            async with self._lock(row.agent):
                if self.handoff is not None:
                    try:
                        skipped = await self.handoff.prepare(row)
                    except Duplicate:
                        return await self.get(row.id)
                if skipped is not None:
                    outcome = skipped
                elif row.kind == ApprovalKind.INIT_CONFIG:
                    fetched, outcome = await self._init_config(row)
                elif row.kind == ApprovalKind.SPAWN:
                    fetched, outcome = await self._spawn(row)
                elif row.kind == ApprovalKind.APPLY_COMMIT:
                    outcome = await self._apply_commit(row)
                else:
                    raise BadRequest(f"unknown approval kind {row.kind!r}")
            status = ApprovalStatus.APPROVED
        except Exception as exc:
            status = ApprovalStatus.FAILED
            reason = str(exc) if isinstance(exc, HiveError) else f"{type(exc).__name__}: {exc}"
            outcome = f"failed: {reason}"
            log = logger.warning if isinstance(exc, HiveError) else logger.exception
            log(
                "approval #%d failed: %s",
                row.id,
                reason,
                extra={"action": "approval_failed", "agent": row.agent},
            )
        if self.handoff is not None:
            done = (
                "superseded"
                if skipped
                else ("applied" if status == ApprovalStatus.APPROVED else "failed")
            )
            await self.handoff.finished(row.id, done)
        note = "; ".join(p for p in (operator_note, outcome) if p)
        final = await self.store.finish(row.id, status, note[:NOTE_MAX], fetched_sha=fetched)
        await self._resolved(final)
        return final

    def _lifecycle(self) -> LifecycleOps | None:
        return self.lifecycle

    async def _init_config(self, row: ApprovalRow) -> tuple[str, str]:
        sha = await self.configs.seed(row.agent, _seed_message(row))
        await self._tell(row.requested_by, "config_ready", agent=row.agent)
        return sha, f"seeded {sha[:12]}"

    async def _spawn(self, row: ApprovalRow) -> tuple[str | None, str]:
        name = row.agent
        if self.hive.registry.get(name) is not None:
            raise Conflict(f'agent "{name}" already exists')
        seeded = None
        if not self.configs.has_repo(name):
            seeded = await self.configs.seed(name, _seed_message(row))
        target = row.fetched_sha
        if target is None and not self.configs.has_applied(name):
            target = seeded or await self.configs.repo(name).tag_sha("seed")
            if target is None:
                raise NotFound(
                    f"{name}'s config repo has nothing applied and no seed tag; "
                    "request_apply_commit a commit first"
                )
        if target is not None:
            await self.configs.apply(name, target, tag=f"deployed/{row.id}")
        applied = self.configs.deployed_sha(name)
        lifecycle = self._lifecycle()
        # across nodes: placed here before it is registered (another node seeing the row first
        # must find it placed, not place it on itself)
        placed = self.handoff is not None and await self.handoff.place_here(name)
        try:
            if lifecycle is not None:
                await _maybe_await(lifecycle.spawn_agent(name, requested_by=row.requested_by))
            else:  # no lifecycle installed (a bare core): register and open the socket
                await self.hive.spawn(name)
        except Exception as exc:
            if placed and self.handoff is not None:
                await self.handoff.nodes.unplace(name)
            await self._tell(row.requested_by, "spawned", agent=name, ok=False, note=str(exc))
            raise
        note = f"spawned with config {applied}" if applied else "spawned"
        await self._tell(row.requested_by, "spawned", agent=name, ok=True, note=note)
        return (seeded if row.fetched_sha is None else None), note

    async def _apply_commit(self, row: ApprovalRow) -> str:
        name = row.agent
        if row.fetched_sha is None:
            raise BadRequest(f"approval #{row.id} has no pinned commit")
        await self.configs.apply(name, row.fetched_sha, tag=f"deployed/{row.id}")
        note = f"applied {row.fetched_sha[:12]}"
        if self.hive.registry.get(name) is None:
            return note + f" ({name} does not run yet)"
        lifecycle = self._lifecycle()
        if lifecycle is None:
            return note + " (no lifecycle installed: not rebuilt)"
        try:
            await lifecycle.rebuild(name)
        except NotSupported as exc:  # an external agent: nothing of it runs here to rebuild
            return note + f" (not rebuilt: {exc})"
        except Exception as exc:
            await self._tell(row.requested_by, "rebuilt", agent=name, ok=False, note=str(exc))
            raise HiveError(f"{note}, but the rebuild failed: {exc}") from exc
        await self._tell(row.requested_by, "rebuilt", agent=name, ok=True, note=note)
        return note + ", rebuilt"

    # -- telling ------------------------------------------------------------------------------

    async def _resolved(self, row: ApprovalRow) -> None:
        logger.info(
            "approval #%d %s",
            row.id,
            row.status,
            extra={"action": f"approval_{row.status}", "agent": row.agent},
        )
        self.hive.hub.publish(
            "approval_resolved",
            id=row.id,
            agent=row.agent,
            kind=row.kind,
            commit_ref=row.commit_ref,
            status=row.status,
            note=row.note,
            resolved_at=row.resolved_at,
            requested_by=row.requested_by,
        )
        await self._tell(
            row.requested_by,
            "approval_resolved",
            id=row.id,
            agent=row.agent,
            kind=row.kind,
            commit_ref=row.commit_ref,
            status=row.status,
            note=row.note,
        )

    async def _tell(self, to: str, event: str, **data: object) -> None:
        try:
            await self.hive.broker.system_event(to, event, **data)
        except HiveError as exc:  # e.g. the requester was destroyed meanwhile
            logger.warning(
                "could not tell %s about %s: %s",
                to,
                event,
                exc,
                extra={"action": "approval_notify_failed", "agent": to},
            )

    # -- open threads -------------------------------------------------------------------------

    async def _open_followups(self, agent: str) -> list[FollowupView]:
        return [
            FollowupView(
                id=f"a:{row.id}",
                kind="approval",
                summary=_summary(row),
                opened_at=row.requested_at,
            )
            for row in await self.store.pending(requested_by=agent)
        ]

    async def _cancel_followup(self, agent: str, aid: int) -> CancelOutcome:
        row, won = await self.cancel(aid, agent)
        if won:
            return CancelOutcome(True, f"approval #{aid} cancelled")
        return CancelOutcome(False, f"approval #{aid} was already {row.status}")


def _summary(row: ApprovalRow) -> str:
    whats: dict[str, str] = {
        ApprovalKind.SPAWN: f"spawn {row.agent}",
        ApprovalKind.INIT_CONFIG: f"seed a config repo for {row.agent}",
        ApprovalKind.APPLY_COMMIT: f"apply {(row.fetched_sha or row.commit_ref)[:12]} to {row.agent}",
    }
    what = whats.get(row.kind, row.kind)
    desc = " ".join(row.description.split())
    if len(desc) > 150:
        desc = desc[:149] + "…"
    return f"waiting for the operator to approve: {what}" + (f" — {desc}" if desc else "")


def _node_name(hive: Hive) -> str | None:
    return getattr(hive.feature("nodes"), "node", None)


def _seed_message(row: ApprovalRow) -> str:
    body = f"\n\n{row.description}" if row.description else ""
    return (
        f"seed config for {row.agent} (approval #{row.id}, requested by {row.requested_by}){body}"
    )


async def _maybe_await(value: object) -> None:
    if inspect.isawaitable(value):
        await value


__all__ = ["ApprovalFailed", "ApprovalsFeature", "LifecycleOps"]
