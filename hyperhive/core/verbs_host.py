"""Handlers for the host admin socket (v1 verbs the core owns, plus operator send/inbox).

Verbs whose owning feature is not installed answer `ok:false` "not supported" through the
dispatcher's default, never a crash.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from hyperhive.core.events import ResyncNeeded
from hyperhive.core.rpc import Caller, Reply
from hyperhive.core.status import status_row, status_rows
from hyperhive.core.verbs_agent import inbox_row
from hyperhive.errors import Resync, error_body
from hyperhive.names import OPERATOR, validate_name
from hyperhive.wire.base import Ok, dump_response
from hyperhive.wire.host import (
    AgentStatus,
    AgentStatusOk,
    HostSend,
    HostSendOk,
    Inbox,
    InboxOk,
    List,
    ListOk,
    SetPaused,
    Spawn,
    SubscribeAgentStatus,
    Urls,
    UrlSet,
    UrlsOk,
)

if TYPE_CHECKING:
    from hyperhive.core.hive import Hive

STATUS_EVENT_KINDS = frozenset(
    {
        "agent_registered",
        "agent_updated",
        "agent_removed",
        "agent_connections",
        "transient_set",
        "transient_cleared",
        "agent_state",
        "agent_axes",
        "reminder_scheduled",
        "reminder_delivered",
        "reminder_failed",
        "question_added",
        "question_resolved",
    }
)


def register(hive: Hive) -> None:
    d = hive.host_rpc

    @d.handle(List)
    async def list_agents(caller: Caller, req: List) -> ListOk:
        return ListOk(agents=hive.registry.names())

    @d.handle(AgentStatus)
    async def agent_status(caller: Caller, req: AgentStatus) -> AgentStatusOk:
        return AgentStatusOk(agent_statuses=await status_rows(hive))

    @d.handle(Urls)
    async def urls(caller: Caller, req: Urls) -> UrlsOk:
        # the address actually bound (a configured port 0 means "any free port"); none while
        # no dashboard serves
        url = hive.dashboard_url or None
        host = urlsplit(url).hostname if url else None
        domain = host or hive.config.dashboard.listen.rsplit(":", 1)[0]
        return UrlsOk(urls=UrlSet(domain=domain, dashboard=url))

    @d.handle(Spawn)
    async def spawn(caller: Caller, req: Spawn) -> Ok:
        await hive.spawn(validate_name(req.name), req.runtime)
        if req.keep_mail:
            await hive.broker.adopt_mail(req.name)
        return Ok()

    @d.handle(SetPaused)
    async def set_paused(caller: Caller, req: SetPaused) -> Ok:
        await hive.registry.update(validate_name(req.name), paused=req.paused)
        return Ok()

    @d.handle(HostSend)
    async def send(caller: Caller, req: HostSend) -> HostSendOk:
        stored = await hive.broker.send(OPERATOR, req.to, req.body)
        return HostSendOk(ids=[m.id for m in stored], recipients=[m.recipient for m in stored])

    @d.handle(Inbox)
    async def inbox(caller: Caller, req: Inbox) -> InboxOk:
        rows = await hive.broker.recent(OPERATOR, req.limit)
        if req.mark_read:
            await hive.broker.mark_read(OPERATOR, [m.id for m in rows if m.delivered_at is None])
        return InboxOk(rows=[inbox_row(m) for m in rows], unread=await hive.broker.unread(OPERATOR))

    @d.handle(SubscribeAgentStatus)
    async def subscribe(caller: Caller, req: SubscribeAgentStatus) -> Reply:
        async def stream() -> AsyncIterator[dict[str, Any]]:
            try:
                async for ev in hive.hub.follow(hive.hub.last_seq):
                    if ev.kind not in STATUS_EVENT_KINDS:
                        continue
                    name = ev.data.get("agent")
                    if not isinstance(name, str) or hive.registry.get(name) is None:
                        continue
                    row = await status_row(hive, name)
                    yield {"ok": True, "agent_statuses": [row.model_dump(exclude_none=True)]}
            except ResyncNeeded as exc:  # fell behind: one last line, then the stream ends
                yield error_body(Resync(f"{exc}: subscribe again and re-read agent_status"))

        return Reply(dump_response(Ok()), stream=stream())
