"""Handlers for the verbs every agent speaks on its own socket (send, recv, recent, whoami)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hyperhive.core.records import Message
from hyperhive.core.rpc import Caller, Reply
from hyperhive.wire.agent import (
    InboxRow,
    Recent,
    RecentOk,
    Recv,
    RecvOk,
    Send,
    SendOk,
    Whoami,
    WhoamiOk,
)
from hyperhive.wire.base import dump_response

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


def register(hive: Hive) -> None:
    d = hive.agent_rpc

    @d.handle(Send)
    async def send(caller: Caller, req: Send) -> SendOk:
        stored = await hive.broker.send(caller.name, req.to, req.body)
        return SendOk(ids=[m.id for m in stored], recipients=[m.recipient for m in stored])

    @d.handle(Recv)
    async def recv(caller: Caller, req: Recv) -> Reply:
        lease = await hive.broker.recv(caller.name, req.wait_seconds, req.max)
        body = RecvOk(messages=[inbox_row(m) for m in lease.messages], remaining=lease.remaining)

        async def sent() -> None:
            await hive.broker.ack(lease)

        return Reply(
            dump_response(body), on_sent=sent, on_failed=lambda: hive.broker.release(lease)
        )

    @d.handle(Recent)
    async def recent(caller: Caller, req: Recent) -> RecentOk:
        rows = await hive.broker.recent(caller.name, req.limit)
        return RecentOk(rows=[inbox_row(m) for m in rows])

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
