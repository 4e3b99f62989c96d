"""Node verbs (a hive across hosts, docs/multihost.md): `nodes` lists the hive's nodes."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from hyperhive.wire.base import Request, Response, verb


class NodeInfo(BaseModel):
    model_config = ConfigDict(frozen=True)
    name: str
    live: bool
    this: bool  # the node that answered
    heartbeat_at: str  # ISO time of its last heartbeat
    heartbeat_age_seconds: float
    started_at: str
    load: float
    mem_free_mb: int
    agents: int
    peer_url: str | None = None
    dashboard_url: str | None = None


@verb("host")
class Nodes(Request):
    cmd: Literal["nodes"]


class NodesOk(Response):
    nodes: list[NodeInfo]
    node: str  # the node that answered
