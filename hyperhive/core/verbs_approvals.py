"""The approvals' verbs (`core/approvals.py`): the manager's requests on its agent socket,
the operator's listing, decisions and requests on the host socket."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hyperhive.core.rpc import Caller
from hyperhive.errors import Forbidden
from hyperhive.names import OPERATOR
from hyperhive.wire.approvals import (
    ApprovalQueued,
    ApprovalResolvedOk,
    MgrRequestSpawn,
    PendingOk,
    RequestApplyCommit,
    RequestInitConfig,
    ShowApproval,
    ShowApprovalOk,
)
from hyperhive.wire.host import Approve, Deny, Pending, RequestSpawn

if TYPE_CHECKING:
    from hyperhive.core.approvals import ApprovalsFeature
    from hyperhive.core.hive import Hive


def register(hive: Hive, approvals: ApprovalsFeature) -> None:
    a = hive.agent_rpc

    def manager_only(caller: Caller) -> None:
        if caller.kind != "manager":
            raise Forbidden("only the manager may request approvals")

    @a.handle(MgrRequestSpawn)
    async def request_spawn(caller: Caller, req: MgrRequestSpawn) -> ApprovalQueued:
        manager_only(caller)
        row = await approvals.request_spawn(
            req.name, requested_by=caller.name, description=req.description, node=req.node
        )
        return ApprovalQueued(id=row.id, approval=row)

    @a.handle(RequestInitConfig)
    async def request_init_config(caller: Caller, req: RequestInitConfig) -> ApprovalQueued:
        manager_only(caller)
        row = await approvals.request_init_config(
            req.name, requested_by=caller.name, description=req.description
        )
        return ApprovalQueued(id=row.id, approval=row)

    @a.handle(RequestApplyCommit)
    async def request_apply_commit(caller: Caller, req: RequestApplyCommit) -> ApprovalQueued:
        manager_only(caller)
        row = await approvals.request_apply_commit(
            req.agent, req.sha, requested_by=caller.name, description=req.description
        )
        return ApprovalQueued(id=row.id, approval=row)

    h = hive.host_rpc

    @h.handle(Pending)
    async def pending(caller: Caller, req: Pending) -> PendingOk:
        return PendingOk(approvals=await approvals.listing())

    @h.handle(Approve)
    async def approve(caller: Caller, req: Approve) -> ApprovalResolvedOk:
        return ApprovalResolvedOk(approval=await approvals.approve(req.id, req.note))

    @h.handle(Deny)
    async def deny(caller: Caller, req: Deny) -> ApprovalResolvedOk:
        return ApprovalResolvedOk(approval=await approvals.deny(req.id, req.note))

    @h.handle(RequestSpawn)
    async def host_request_spawn(caller: Caller, req: RequestSpawn) -> ApprovalQueued:
        row = await approvals.request_spawn(
            req.name, requested_by=OPERATOR, description=req.description or "", node=req.node
        )
        return ApprovalQueued(id=row.id, approval=row)

    @h.handle(ShowApproval)
    async def show(caller: Caller, req: ShowApproval) -> ShowApprovalOk:
        row = await approvals.get(req.id)
        return ShowApprovalOk(approval=row, diff=await approvals.diff(req.id))
