"""Tool permissions asked of the operator (`hive.permissions`; docs/permissions.md).

Flow: an agent's harness gets a `can_use_tool` request from its CLI for a tool matching the
agent's `ask_operator_for` and sends `ask_permission` on the agent's socket. The request is
stored and shown (dashboard, agent page, `hive permissions`, host socket); the verb parks until
the operator allows once, allows always (for this agent), or denies with a note — or until the
TTL (`defaults.ask_operator_ttl_seconds`) denies it with "[expired]". The harness answers the
CLI with the decision; the turn waited meanwhile.

Invariants:
- A request is decided once, by the store (`PermissionStore.decide`): of two operators
  clicking at once, or a click racing the expiry, one wins and the other gets a `Conflict`
  (the expiry a no-op). Every decision wakes every parked asker of that request.
- Nothing stale: a request belongs to the harness run that asked (`harness`). When the agent
  is started, restarted, rebuilt, stopped or removed, when its last connection closes, or when
  a new harness run asks, the earlier run's pending requests are decided `dropped` — a
  restarted agent never inherits old prompts, and the operator is never shown one nobody
  waits for.
- An asker that stops waiting (its turn interrupted, its CLI gone) withdraws the request
  (`withdraw_permission`, best effort): it leaves the operator's list at once.
- A resend of `ask_permission` with the same `key` (the client retrying after the connection
  or the core went away) joins the same request and is never asked twice; deadlines are rows,
  so they survive a core restart.
- "Allow always" keeps the narrowest rule for the use (`permrules.exact_rule`) in a separate
  kept list of that agent incarnation (`permission_rules`), not in its config repo: it takes
  effect at once, without a rebuild, and is consulted before asking. A destroyed-and-respawned
  agent of the same name starts with none.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from hyperhive import permrules
from hyperhive.clock import iso, parse_iso
from hyperhive.core.agentstate import STARTING_TRANSIENTS, clip
from hyperhive.core.deadlines import DeadlineScheduler, Inflight
from hyperhive.core.events import HiveEvent
from hyperhive.core.feature import BaseFeature
from hyperhive.core.rpc import Caller
from hyperhive.core.store.permissions_base import PermissionStore
from hyperhive.errors import BadRequest, Conflict, NotFound
from hyperhive.wire.attention import AttentionItem
from hyperhive.wire.permissions import (
    DENIED,
    DROPPED,
    EXPIRED,
    WITHDRAWN,
    AskPermission,
    DecidePermission,
    Decision,
    PermissionDecided,
    PermissionDecidedOk,
    PermissionRow,
    Permissions,
    PermissionsOk,
    PermissionStatus,
    PermissionWithdrawn,
    WithdrawPermission,
)

if TYPE_CHECKING:
    from hyperhive.core.hive import Hive

logger = logging.getLogger(__name__)

BATCH = 100
# lifecycle actions that end the agent's harness (its pending requests are then dropped)
_HARNESS_ENDS = STARTING_TRANSIENTS | {"stopping", "destroying"}


class PermissionsFeature(BaseFeature):
    """Tool permission requests; started as `hive.permissions`."""

    name = "permissions"

    def __init__(self, store: PermissionStore | None = None) -> None:
        self._given_store = store
        self._inflight = Inflight()
        self._decided: dict[int, asyncio.Event] = {}
        self._drops: asyncio.Queue[str] = asyncio.Queue()

    async def start(self, hive: Hive) -> None:
        await super().start(hive)
        self.store: PermissionStore = self._given_store or hive.storage.permissions
        self.scheduler = DeadlineScheduler(
            "permission-deadlines", hive.clock, self._next_deadline, self.expire_due
        )
        hive.hub.add_listener(self._on_event, relayed=True)
        _register_verbs(hive, self)
        self.scheduler.start(hive.tasks)
        hive.tasks.spawn("permission-drops", self._drop_loop, restart=True)

    async def aclose(self) -> None:
        await self._inflight.aclose()

    async def status_fields(self, agent: str) -> dict[str, Any]:
        return (await self.status_fields_many([agent]))[agent]

    async def status_fields_many(self, agents: Sequence[str]) -> dict[str, dict[str, Any]]:
        """`pending_permissions`, and `open_permission`: the oldest one as the agent state's
        note (`core/status.py` takes it out of the row)."""
        waiting = await self.pending_by_agent(agents)
        return {
            a: {"pending_permissions": len(rows), "open_permission": waiting_note(rows[0])}
            if (rows := waiting[a])
            else {}
            for a in agents
        }

    async def pending_by_agent(self, agents: Sequence[str]) -> dict[str, list[PermissionRow]]:
        """Each of `agents`' pending requests, oldest first, from one read of all of them."""
        out: dict[str, list[PermissionRow]] = {a: [] for a in agents}
        for row in await self.store.pending(agents[0] if len(agents) == 1 else None):
            if row.agent in out:
                out[row.agent].append(row)
        return out

    async def attention(self) -> list[AttentionItem]:
        n = len(await self.store.pending())
        return [
            AttentionItem(
                kind="permissions", count=n, label="tool permission requests", href="#permissions"
            )
        ]

    # -- the API every surface uses --------------------------------------------------------

    async def ask(
        self,
        agent: str,
        *,
        harness: str,
        key: str,
        tool: str,
        tool_input: Mapping[str, Any],
        tool_use_id: str | None = None,
        reason: str | None = None,
        rule: str | None = None,
    ) -> PermissionRow:
        """Store the request (or join the one with this `key`) and wait for its decision."""
        self.hive.registry.require(agent)
        for pid in await self.store.stale(agent, harness):  # an earlier harness run's
            await self._decide(pid, PermissionStatus.DROPPED, DROPPED, "dropped")
        generation = self.hive.broker.generation(agent)
        now = self.hive.clock.now()
        deadline = now + self.hive.config.defaults.ask_operator_ttl_seconds
        row, created = await self.store.insert(
            agent=agent,
            generation=generation,
            harness=harness,
            key=key,
            tool=tool,
            tool_input=tool_input,
            asked_at=iso(now),
            deadline_at=iso(deadline),
            tool_use_id=tool_use_id,
            reason=reason,
            rule=rule,
        )
        if created:
            kept = await self._kept_rule_for(agent, generation, tool, tool_input)
            if kept is not None:
                row, _ = await self._decide(
                    row.id, PermissionStatus.ALLOWED, "", "kept", kept_rule=kept
                )
                return row
            logger.info(
                "permission #%d: %s asks to use %s",
                row.id,
                agent,
                tool,
                extra={"action": "permission_added", "agent": agent},
            )
            self.hive.hub.publish("permission_added", **_event(row))
            self.scheduler.poke(deadline)
        return await self.wait(row.id)

    async def wait(self, pid: int) -> PermissionRow:
        """Until request `pid` is decided; its final row."""
        event = self._decided.setdefault(pid, asyncio.Event())
        while True:
            row = await self.get(pid)
            if not row.pending:
                return row
            await event.wait()

    async def pending(self, agent: str | None = None) -> list[PermissionRow]:
        return await self.store.pending(agent)

    async def get(self, pid: int) -> PermissionRow:
        row = await self.store.get(pid)
        if row is None:
            raise NotFound(f"no permission request #{pid}")
        return row

    async def decide(self, pid: int, decision: Decision, note: str | None = None) -> PermissionRow:
        """The operator's decision. `Conflict` if the request is no longer pending."""
        row = await self.get(pid)
        text = " ".join((note or "").split())
        kept: str | None = None
        if decision == "deny":
            status, text = PermissionStatus.DENIED, text or DENIED
        else:
            status = PermissionStatus.ALLOWED
            if decision == "always" and row.pending:
                kept = permrules.exact_rule(row.tool, row.input)
                if kept is None:
                    raise BadRequest(
                        f"permission #{pid}: no rule narrower than every use of {row.tool} fits"
                        " this request (its command or path holds a glob); allow it once"
                    )
        done, won = await self._decide(pid, status, text, decision, kept_rule=kept)
        if not won:
            raise Conflict(f"permission request #{pid} is already {done.status.value}")
        return done

    async def withdraw(self, agent: str, key: str) -> tuple[PermissionRow | None, bool]:
        """The asker stopped waiting for request `key`: drop it if it is still pending."""
        row = await self.store.by_key(agent, key)
        if row is None:
            return None, False
        return await self._decide(row.id, PermissionStatus.DROPPED, WITHDRAWN, "withdrawn")

    async def rules(self, agent: str) -> list[str]:
        """The rules "allow always" kept for `agent`'s current incarnation."""
        self.hive.registry.require(agent)
        return await self.store.rules(agent, self.hive.broker.generation(agent))

    async def drop_agent(self, agent: str) -> int:
        """Decide every pending request of `agent` `dropped` (its harness is gone)."""
        ids = await self.store.stale(agent)
        for pid in ids:
            await self._decide(pid, PermissionStatus.DROPPED, DROPPED, "dropped")
        return len(ids)

    async def expire_due(self, now: float) -> None:
        cutoff = iso(now)
        while True:
            ids = await self.store.overdue(cutoff, BATCH)
            for pid in ids:
                await self._decide(pid, PermissionStatus.EXPIRED, EXPIRED, "expired")
            if len(ids) < BATCH:
                return

    # -- internals --------------------------------------------------------------------------

    async def _kept_rule_for(
        self, agent: str, generation: int, tool: str, tool_input: Mapping[str, Any]
    ) -> str | None:
        kept = [permrules.parse(r) for r in await self.store.rules(agent, generation)]
        found = permrules.first_match(kept, tool, tool_input, every_part=True)
        return str(found) if found is not None else None

    async def _next_deadline(self) -> float | None:
        at = await self.store.next_deadline()
        return parse_iso(at) if at is not None else None

    async def _decide(
        self,
        pid: int,
        status: PermissionStatus,
        note: str,
        how: str,
        *,
        kept_rule: str | None = None,
    ) -> tuple[PermissionRow, bool]:
        return await self._inflight.run(self._decide_and_wake(pid, status, note, how, kept_rule))

    async def _decide_and_wake(
        self, pid: int, status: PermissionStatus, note: str, how: str, kept_rule: str | None
    ) -> tuple[PermissionRow, bool]:
        row, won = await self.store.decide(pid, status, iso(self.hive.clock.now()), note, kept_rule)
        if won and kept_rule is not None and how == "always":
            await self.store.keep_rule(row.agent, row.generation, kept_rule, row.decided_at or "")
        event = self._decided.pop(pid, None)
        if event is not None:
            event.set()
        if not won:
            return row, False
        logger.info(
            "permission #%d (%s, %s) %s: %s",
            row.id,
            row.agent,
            row.tool,
            how,
            row.status.value,
            extra={"action": f"permission_{how}", "agent": row.agent},
        )
        self.hive.hub.publish(
            "permission_resolved",
            id=row.id,
            agent=row.agent,
            tool=row.tool,
            status=row.status.value,
            how=how,
            note=row.note,
            kept_rule=row.kept_rule,
            decided_at=row.decided_at,
        )
        return row, True

    def _on_event(self, ev: HiveEvent) -> None:
        if ev.data.get("relayed"):  # decided on another node: wake the askers parked here
            if ev.kind == "permission_resolved" and isinstance(ev.data.get("id"), int):
                event = self._decided.pop(ev.data["id"], None)
                if event is not None:
                    event.set()
            return
        agent = ev.data.get("agent")
        if not isinstance(agent, str):
            return
        if (
            (ev.kind == "transient_set" and ev.data.get("transient") in _HARNESS_ENDS)
            or ev.kind == "agent_removed"
            or (ev.kind == "agent_connections" and ev.data.get("connections") == 0)
        ):
            self._drops.put_nowait(agent)

    async def _drop_loop(self) -> None:
        while True:
            agent = await self._drops.get()
            n = await self.drop_agent(agent)
            if n:
                logger.info(
                    "dropped %d pending permission request(s) of %s: its harness is gone",
                    n,
                    agent,
                    extra={"action": "permission_dropped", "agent": agent},
                )


def waiting_note(row: PermissionRow) -> str:
    """The agent state's note while it waits for the operator."""
    return clip(f"waiting for the operator: may it use {_use(row)}? (#{row.id})", 200) or ""


def _use(row: PermissionRow) -> str:
    command = row.input.get("command")
    if row.tool == "Bash" and isinstance(command, str):
        return f"Bash({command})"
    for key in ("file_path", "notebook_path", "path", "url"):
        value = row.input.get(key)
        if isinstance(value, str):
            return f"{row.tool}({value})"
    return row.tool


def _event(row: PermissionRow) -> dict[str, Any]:
    return row.model_dump(mode="json", exclude_none=True, exclude={"generation"})


def _register_verbs(hive: Hive, perms: PermissionsFeature) -> None:
    @hive.agent_rpc.handle(AskPermission)
    async def ask_permission(caller: Caller, req: AskPermission) -> PermissionDecided:
        row = await perms.ask(
            caller.name,
            harness=req.harness,
            key=req.key,
            tool=req.tool,
            tool_input=req.input,
            tool_use_id=req.tool_use_id,
            reason=req.reason,
            rule=req.rule,
        )
        return PermissionDecided(
            id=row.id,
            behavior="allow" if row.allowed else "deny",
            status=row.status,
            note=row.note,
        )

    @hive.agent_rpc.handle(WithdrawPermission)
    async def withdraw_permission(caller: Caller, req: WithdrawPermission) -> PermissionWithdrawn:
        row, won = await perms.withdraw(caller.name, req.key)
        return PermissionWithdrawn(withdrawn=won, id=row.id if row is not None else None)

    @hive.host_rpc.handle(Permissions)
    async def list_permissions(caller: Caller, req: Permissions) -> PermissionsOk:
        return PermissionsOk(permissions=await perms.pending())

    @hive.host_rpc.handle(DecidePermission)
    async def decide_permission(caller: Caller, req: DecidePermission) -> PermissionDecidedOk:
        return PermissionDecidedOk(permission=await perms.decide(req.id, req.decision, req.note))
