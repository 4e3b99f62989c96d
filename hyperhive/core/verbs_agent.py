"""Handlers for the verbs every agent speaks on its own socket (send, recv, ack, release,
renew, recent, whoami, config, report_state).

recv's messages stay leased to the asking connection once the reply is written
(`core/leases.py`); `ack`, the next `recv`, `release`, the connection's end or its lease
timeout settle them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hyperhive.core.leases import ConnectionLeases
from hyperhive.core.records import Message
from hyperhive.core.rpc import Caller, Reply
from hyperhive.errors import NotSupported
from hyperhive.wire.agent import (
    Ack,
    GetConfig,
    GetConfigOk,
    InboxRow,
    LeaseIdsOk,
    Recent,
    RecentOk,
    Recv,
    Release,
    Renew,
    RenewOk,
    ReportState,
    Send,
    Whoami,
    WhoamiOk,
)
from hyperhive.wire.base import Ok

if TYPE_CHECKING:
    from hyperhive.core.hive import Hive


def inbox_row(m: Message) -> InboxRow:
    return InboxRow(
        id=m.id,
        sender=m.sender,
        to=m.recipient,
        body=m.body,
        kind=m.kind,
        sent_at=m.sent_at,
        delivered_at=m.delivered_at,
        trace_parent=m.trace_parent,
    )


def row_dict(m: Message) -> dict[str, object]:
    """`inbox_row(m)` as its wire dict, without building the model (hot path)."""
    d: dict[str, object] = {
        "id": m.id,
        "from": m.sender,
        "to": m.recipient,
        "body": m.body,
        "kind": m.kind,
        "sent_at": m.sent_at,
    }
    if m.delivered_at is not None:
        d["delivered_at"] = m.delivered_at
    if m.trace_parent is not None:
        d["trace_parent"] = m.trace_parent
    return d


def register(hive: Hive) -> None:
    d = hive.agent_rpc

    # send and recv are the hot path: they answer plain dicts of exactly the shape of
    # `SendOk` / `RecvOk` (tests/wire checks the shapes agree) instead of building models.
    @d.handle(Send)
    async def send(caller: Caller, req: Send) -> dict[str, object]:
        stored = await hive.broker.send(
            caller.name, req.to, req.body, trace_parent=req.trace_parent
        )
        return {
            "ok": True,
            "ids": [m.id for m in stored],
            "recipients": [m.recipient for m in stored],
        }

    @d.handle(Recv)
    async def recv(caller: Caller, req: Recv) -> Reply:
        leases = caller.leases
        if leases is not None:
            leases.ack()  # the next recv acknowledges the previous batch
        lease = await hive.broker.recv(caller.name, req.wait_seconds, req.max)
        body: dict[str, object] = {
            "ok": True,
            "messages": [row_dict(m) for m in lease.messages],
            "remaining": lease.remaining,
        }
        if leases is None:  # no connection to hold it: delivered once written (as before)

            async def written() -> None:
                hive.broker.ack_soon(lease)

        else:
            if lease.messages:
                body["lease_seconds"] = leases.lease_seconds

            async def written() -> None:
                leases.add(lease)

        # `body` is built without None fields: no `dump_response` copy on the hot path
        return Reply(body, on_sent=written, on_failed=lambda: hive.broker.release(lease))

    def held_by(caller: Caller) -> ConnectionLeases:
        if caller.leases is None:
            raise NotSupported("this connection holds no recv leases")
        return caller.leases

    @d.handle(Ack)
    async def ack(caller: Caller, req: Ack) -> dict[str, object]:
        return {"ok": True, "ids": held_by(caller).ack(req.ids)}

    @d.handle(Release)
    async def release(caller: Caller, req: Release) -> LeaseIdsOk:
        return LeaseIdsOk(ids=held_by(caller).release(req.ids))

    @d.handle(Renew)
    async def renew(caller: Caller, req: Renew) -> RenewOk:
        leases = held_by(caller)
        leases.touch()
        return RenewOk(held=leases.held, lease_seconds=leases.lease_seconds)

    @d.handle(Recent)
    async def recent(caller: Caller, req: Recent) -> RecentOk:
        rows = await hive.broker.recent(caller.name, req.limit)
        return RecentOk(rows=[inbox_row(m) for m in rows])

    @d.handle(GetConfig)
    async def get_config(caller: Caller, req: GetConfig) -> GetConfigOk:
        rec = hive.registry.require(caller.name)
        cfg = hive.agent_configs.get_or_default(caller.name)
        role = None
        if cfg.role_prompt:
            role_file = hive.paths.applied_dir(caller.name) / cfg.role_prompt
            if role_file.is_file():
                role = role_file.read_text(encoding="utf-8", errors="replace")
        config = cfg.model_dump(mode="json")
        if cfg.ask_operator_for is None:  # the hive's default list (docs/permissions.md)
            config["ask_operator_for"] = list(hive.config.defaults.ask_operator_for)
        return GetConfigOk(
            model=cfg.model or rec.model or hive.config.defaults.model,
            config=config,
            role_prompt=role,
        )

    @d.handle(ReportState)
    async def report_state(caller: Caller, req: ReportState) -> Ok:
        hive.agent_states.report(caller.name, req.state, req.note, req.turn_started_at, req.tool)
        return Ok()

    @d.handle(Whoami)
    async def whoami(caller: Caller, req: Whoami) -> WhoamiOk:
        rec = hive.registry.require(caller.name)
        manager = hive.registry.manager()
        return WhoamiOk(
            name=rec.name,
            kind=rec.kind,
            generation=rec.generation,
            model=hive.agent_configs.model(rec.name),
            manager=manager.name if manager else hive.config.manager.name,
            unread=await hive.broker.unread(rec.name),
        )
