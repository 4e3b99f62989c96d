"""Each agent's page on its own sticky port: `http://127.0.0.1:<port>/`, served by the core
(`hyperhive.web.proxy.agent_port_app`: the page, its API forwarded to the harness's
`web.sock`, `/send` as the operator), for bookmarks and for operators who like one tab per
agent.

Invariants:
- The port comes from `allocate_port` (stored in the agent's port file on first use, never
  changed afterwards), so it survives daemon restarts; the ports other agents hold, including
  destroyed agents whose state is kept, are never handed out.
- Forwarders open and close as agents are registered and removed (hub events), in the order
  asked per agent, in background tasks: nothing here blocks the daemon's start, and a port
  still held by a dying previous daemon (retried by `bind_with_retry`) delays no other agent.
  Each agent's port is opened once at start (events are followed from the start-up sweep on).
- A new port skips ports something else on the host listens on (another hive's agents).
- Shutdown closes every page server at once (`aclose`), not one after the other.
- The same `Guard` rules as the dashboard's: with `[dashboard] token_file` set, every request
  but `/static/*` needs the operator token (Bearer header or the `/login?token=` cookie), on
  every agent's port too (a page port sends as `operator` and shows the agent's inbox).
- Only 127.0.0.1 is bound. A port that cannot be bound is logged and left closed; the agent
  stays reachable at `/agent/<name>/` on the dashboard.
- `status_fields` reports `web_port` only while the forwarder listens (and no `url`: the
  hive has no public-domain setting to build one from).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import TYPE_CHECKING, Any

import uvicorn

from hyperhive.core.events import HiveEvent
from hyperhive.core.feature import BaseFeature
from hyperhive.errors import HiveError
from hyperhive.httpserver import QuietServer
from hyperhive.netio import bind_with_retry
from hyperhive.web.ports import allocate_port

if TYPE_CHECKING:
    from hyperhive.core.hive import Hive

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
CLOSE_TIMEOUT = 5.0


class AgentPortServer:
    """One agent's page on one TCP port (an embedded uvicorn on a pre-bound socket)."""

    def __init__(self, hive: Hive, name: str, port: int, token: str | None = None) -> None:
        self.hive = hive
        self.name = name
        self.port = port
        self.token = token
        self.closing = asyncio.Event()
        self._sock: socket.socket | None = None
        self._server: QuietServer | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/"

    async def start(self) -> None:
        from hyperhive.web.proxy import agent_port_app

        self._sock = await bind_with_retry(HOST, self.port, agent=self.name)
        config = uvicorn.Config(
            agent_port_app(self.hive, self.name, self.port, self.closing, token=self.token),
            log_config=None,
            log_level=None,
            access_log=False,
            lifespan="off",
            server_header=False,
            timeout_graceful_shutdown=2,
        )
        self._server = QuietServer(config)
        self._task = asyncio.create_task(
            self._server.serve(sockets=[self._sock]), name=f"agent-port:{self.name}:{self.port}"
        )
        ready = asyncio.create_task(self._server.ready.wait(), name=f"agent-port:{self.name}:ready")
        await asyncio.wait({self._task, ready}, return_when=asyncio.FIRST_COMPLETED)
        if not ready.done():
            ready.cancel()
            await self.aclose()
            raise HiveError(f"the page server for {self.name} failed to start on port {self.port}")

    async def aclose(self) -> None:
        self.closing.set()
        if self._server is not None:
            self._server.request_exit()
        task, self._task = self._task, None
        if task is not None:
            try:
                async with asyncio.timeout(CLOSE_TIMEOUT):
                    await asyncio.shield(task)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            except Exception:
                logger.exception(
                    "the page server for %s ended with an error",
                    self.name,
                    extra={"action": "agent_port_error", "agent": self.name},
                )
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class AgentPorts(BaseFeature):
    """The feature: one `AgentPortServer` per registered agent."""

    name = "agent_ports"

    def __init__(self) -> None:
        self.servers: dict[str, AgentPortServer] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self.token: str | None = None

    async def start(self, hive: Hive) -> None:
        from hyperhive.web.dashboard.security import load_token

        self.hive = hive
        self.token = load_token(hive.config.dashboard.token_file)

    async def after_start(self) -> None:
        # listen from here on, in the same step as the sweep: an agent registered during the
        # start (the first start's manager) is opened once, not by its event and the sweep
        self.hive.hub.add_listener(self._on_event)
        for name in self.hive.registry.names():
            self._schedule("open", name)

    def _on_event(self, ev: HiveEvent) -> None:
        if ev.kind == "agent_registered":
            self._schedule("open", str(ev.data["agent"]))
        elif ev.kind == "agent_removed":
            self._schedule("close", str(ev.data["agent"]))

    def _schedule(self, op: str, name: str) -> None:
        """Open or close `name`'s port in the background: per agent in the order asked (a
        FIFO lock each), agents independently (one port still in use delays no other)."""
        if self._closed:
            return
        task = asyncio.get_running_loop().create_task(
            self._apply(op, name), name=f"agent-port:{op}:{name}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _apply(self, op: str, name: str) -> None:
        async with self._locks.setdefault(name, asyncio.Lock()):
            try:
                if op == "open":
                    await self.open(name)
                else:
                    await self.close(name)
            except Exception:
                logger.exception(
                    "could not %s %s's page port",
                    op,
                    name,
                    extra={"action": "agent_port_failed", "agent": name},
                )

    def port(self, name: str) -> int | None:
        server = self.servers.get(name)
        return server.port if server is not None else None

    def _others(self, name: str) -> dict[str, Any]:
        """Every other agent's port file: registered agents and kept state dirs alike."""
        paths = self.hive.paths
        names = set(self.hive.registry.names())
        if paths.agents_dir.is_dir():
            names.update(d.name for d in paths.agents_dir.iterdir() if d.is_dir())
        out = {}
        for other in names - {name}:
            with contextlib.suppress(HiveError):  # a stray dir that is not an agent name
                out[other] = paths.port_file(other)
        return out

    async def open(self, name: str) -> AgentPortServer | None:
        if name in self.servers or self._closed or self.hive.registry.get(name) is None:
            return self.servers.get(name)
        port = allocate_port(name, self.hive.paths.port_file(name), self._others(name))
        server = AgentPortServer(self.hive, name, port, self.token)
        try:
            await server.start()
        except HiveError as exc:
            logger.warning(
                "%s's page is not on port %d: %s",
                name,
                port,
                exc,
                extra={"action": "agent_port_failed", "agent": name, "port": port},
            )
            return None
        except BaseException:
            await server.aclose()
            raise
        self.servers[name] = server
        logger.info(
            "%s's page at %s",
            name,
            server.url,
            extra={"action": "agent_port_open", "agent": name, "port": port},
        )
        self.hive.hub.publish("agent_port", agent=name, web_port=port)
        return server

    async def close(self, name: str) -> None:
        server = self.servers.pop(name, None)
        if server is not None:
            await server.aclose()
            logger.info(
                "%s's page port %d closed",
                name,
                server.port,
                extra={"action": "agent_port_closed", "agent": name, "port": server.port},
            )

    async def aclose(self) -> None:
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        # together: each close waits up to its graceful shutdown, so one by one was O(agents)
        results = await asyncio.gather(
            *(self.close(name) for name in list(self.servers)), return_exceptions=True
        )
        for exc in results:
            if isinstance(exc, BaseException):
                logger.error(
                    "closing a page port failed: %r", exc, extra={"action": "agent_port_error"}
                )

    async def status_fields(self, agent: str) -> dict[str, Any]:
        port = self.port(agent)
        return {"web_port": port} if port is not None else {}
