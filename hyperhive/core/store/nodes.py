"""The nodes store: which hosts (nodes) serve one hive, their heartbeats, where each agent is
placed, and the hive-wide peer secret. Protocol + the in-memory fake; backends in
`nodes_sqlite.py` (the single-host default) and `nodes_pg.py` (a hive spread over hosts).

Invariants (every backend):
- A heartbeat upserts the node's row (name, time, load, free memory, agent count, peer URL);
  a node's row is never deleted by another node (a lost node is only *seen* as lost, from the
  age of its last heartbeat, so it re-adopts its agents when it comes back).
- An agent has at most one placement; `place` with `expect_free=True` refuses (`Conflict`) a
  name already placed, decided by the store (a unique key), never by a caller reading first.
- `secret()` returns the same value to every node: the first caller creates it, atomically.
"""

from __future__ import annotations

import abc
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace

from hyperhive.errors import Conflict


@dataclass(frozen=True)
class NodeRow:
    name: str
    heartbeat_at: float  # unix seconds, the node's own clock
    started_at: float
    load: float = 0.0  # 1-minute load average
    mem_free_mb: int = 0  # MemAvailable
    agents: int = 0  # agents placed on the node
    peer_url: str = ""  # where other nodes reach its peer endpoint ("" none)
    dashboard_url: str = ""


def new_secret() -> str:
    return secrets.token_urlsafe(32)


class NodeStore(abc.ABC):
    async def open(self) -> None:
        """Connect / create what the backend needs (most need nothing)."""
        return None

    async def aclose(self) -> None:
        return None

    async def publish(self, payload: str) -> None:
        """Push `payload` to every node's `subscribe` callback, this one's included (a
        single-host backend has nobody to tell: no-op)."""
        return None

    def subscribe(self, cb: Callable[[str], None]) -> None:
        """Call `cb(payload)` on the event loop for each payload any node publishes."""
        return None

    @abc.abstractmethod
    async def heartbeat(self, row: NodeRow) -> None:
        """Insert or replace the node's row."""

    @abc.abstractmethod
    async def nodes(self) -> list[NodeRow]:
        """Every node that ever beat, by name."""

    @abc.abstractmethod
    async def placements(self) -> dict[str, str]:
        """agent name → node name."""

    @abc.abstractmethod
    async def place(self, agent: str, node: str, *, expect_free: bool = False) -> None:
        """Put `agent` on `node` (moves an existing placement unless `expect_free`, then
        `Conflict` when the agent is placed already)."""

    @abc.abstractmethod
    async def unplace(self, agent: str) -> None: ...

    @abc.abstractmethod
    async def secret(self) -> str:
        """The hive-wide peer secret, created by the first caller."""


class MemoryNodeStore(NodeStore):
    """In-memory fake; one object shared by several in-process hives stands for one database."""

    def __init__(self) -> None:
        self._nodes: dict[str, NodeRow] = {}
        self._placed: dict[str, str] = {}
        self._secret: str | None = None
        self._subscribers: list[Callable[[str], None]] = []

    async def publish(self, payload: str) -> None:
        for cb in list(self._subscribers):
            cb(payload)

    def subscribe(self, cb: Callable[[str], None]) -> None:
        self._subscribers.append(cb)

    async def heartbeat(self, row: NodeRow) -> None:
        self._nodes[row.name] = replace(row)

    async def nodes(self) -> list[NodeRow]:
        return [self._nodes[n] for n in sorted(self._nodes)]

    async def placements(self) -> dict[str, str]:
        return dict(self._placed)

    async def place(self, agent: str, node: str, *, expect_free: bool = False) -> None:
        if expect_free and agent in self._placed:
            raise Conflict(f'agent "{agent}" already exists (on node {self._placed[agent]})')
        self._placed[agent] = node

    async def unplace(self, agent: str) -> None:
        self._placed.pop(agent, None)

    async def secret(self) -> str:
        if self._secret is None:
            self._secret = new_secret()
        return self._secret
