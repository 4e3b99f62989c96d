"""Handlers for the verbs every agent speaks on its own socket (send, recv, recent, whoami)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hyperhive.core.records import Message
from hyperhive.core.rpc import Caller, Reply
from hyperhive.wire.agent import (
    GetConfig,
    GetConfigOk,
    InboxRow,
    Recent,
    RecentOk,
    Recv,
    Send,
    Whoami,
    WhoamiOk,
)

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
    return d


def register(hive: Hive) -> None:
    d = hive.agent_rpc

    # send and recv are the hot path: they answer plain dicts of exactly the shape of
    # `SendOk` / `RecvOk` (tests/wire checks the shapes agree) instead of building models.
    @d.handle(Send)
    async def send(caller: Caller, req: Send) -> dict[str, object]:
        stored = await hive.broker.send(caller.name, req.to, req.body)
        return {
            "ok": True,
            "ids": [m.id for m in stored],
            "recipients": [m.recipient for m in stored],
        }

    @d.handle(Recv)
    async def recv(caller: Caller, req: Recv) -> Reply:
        lease = await hive.broker.recv(caller.name, req.wait_seconds, req.max)
        body = {
            "ok": True,
            "messages": [row_dict(m) for m in lease.messages],
            "remaining": lease.remaining,
        }

        async def sent() -> None:
            # not awaited: the ack group-commits with other writes while this connection
            # already serves its next request (the lease keeps the ids out of it meanwhile)
            hive.broker.ack_soon(lease)

        # `body` is built without None fields: no `dump_response` copy on the hot path
        return Reply(body, on_sent=sent, on_failed=lambda: hive.broker.release(lease))

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
        return GetConfigOk(
            model=cfg.model or rec.model or hive.config.defaults.model,
            config=cfg.model_dump(mode="json"),
            role_prompt=role,
        )

    @d.handle(Whoami)
    async def whoami(caller: Caller, req: Whoami) -> WhoamiOk:
        rec = hive.registry.require(caller.name)
        manager = hive.registry.manager()
        return WhoamiOk(
            name=rec.name,
            kind=rec.kind,
            generation=rec.generation,
            model=rec.model or hive.config.defaults.model,
            manager=manager.name if manager else hive.config.manager.name,
            unread=await hive.broker.unread(rec.name),
        )
