"""Unix socket servers speaking JSON lines.

- `AgentSocketServer`: one per agent at `run/agents/<name>/hive.sock`. The socket is the
  identity. A connection may carry many requests; each gets exactly one answer line, in order.
- `HostSocketServer`: the admin socket `run/host.sock`, hyperhive v1 framing: one request per
  connection, every answer carries `"version": 1`, answered within 5 s (except the streaming
  `subscribe_agent_status`), never closed without an answer.

Limits (`[sockets]` in hive.toml, `hyperhive.config.Sockets`): an agent holds at most
`max_connections_per_agent` connections (one more is answered one `unavailable` error line and
closed, so a busy agent cannot use up the daemon's descriptors and starve the others); a
connection with no request for `idle_timeout_seconds` is closed without a word (a parked
`recv` is in a request, so never idle; the client reconnects on its next request); both
sockets listen with `backlog`, so a burst of connects waits instead of failing with EAGAIN.
A `host.sock` stream whose reader takes no line for `host_stream_stall_seconds` is aborted
(its buffer freed); one that falls behind the event hub gets a last `resync` error line.

Invariants: a line that is not JSON, not an object, names an unknown verb, has bad fields or is
longer than 1 MiB gets one error line and the connection (and daemon) carry on; a failure to
write an answer is reported to the handler (`Reply.on_failed`) so leased messages go back.
Each agent-socket connection owns its recv leases (`core/leases.py`): every request renews
them, and the connection's end (EOF, error, server close) releases what it still holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from hyperhive import safefs
from hyperhive.config import Sockets
from hyperhive.core.access import secure_host_sock
from hyperhive.core.rpc import Caller, Dispatcher, Reply
from hyperhive.errors import BadRequest, HiveError, Unavailable, error_body
from hyperhive.paths import check_socket_path
from hyperhive.wire.base import MAX_LINE, Request, VerbRegistry, encode_line, parse_request

if TYPE_CHECKING:
    from hyperhive.core.leases import ConnectionLeases

logger = logging.getLogger(__name__)

HOST_VERSION = 1
HOST_ANSWER_TIMEOUT = 5.0


class _LineTooLong(Exception):
    pass


async def read_line(reader: asyncio.StreamReader) -> bytes | None:
    """One line without its newline; None at EOF. Over-long lines are drained and reported."""
    try:
        line = await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError as exc:
        return exc.partial or None
    except asyncio.LimitOverrunError as exc:
        # drain the rest of this line, then report it
        await reader.readexactly(exc.consumed)
        while True:
            try:
                await reader.readuntil(b"\n")
                break
            except asyncio.LimitOverrunError as more:
                await reader.readexactly(more.consumed)
            except asyncio.IncompleteReadError:
                break
        raise _LineTooLong from None
    return line[:-1]


async def _write(writer: asyncio.StreamWriter, body: dict[str, Any]) -> None:
    writer.write(encode_line(body))
    await writer.drain()


async def _send_reply(writer: asyncio.StreamWriter, reply: Reply, extra: dict[str, Any]) -> bool:
    body = {**extra, **reply.body} if extra else reply.body
    try:
        if writer.is_closing():
            raise ConnectionResetError("peer went away")
        await _write(writer, body)
    except BaseException as exc:
        if reply.on_failed is not None:
            reply.on_failed()
        if isinstance(exc, (ConnectionError, OSError, RuntimeError)):
            return False
        raise
    if reply.on_sent is not None:
        await reply.on_sent()
    return True


class _Protocol(asyncio.StreamReaderProtocol):
    """A stream protocol that also tells when the connection is gone (not just half-closed):
    a request that may park registers its task in `parked`, and losing the connection cancels
    that task, so a vanished client's recv never leases mail."""

    def __init__(self, reader: asyncio.StreamReader, cb: Any) -> None:
        super().__init__(reader, cb)
        self.lost = False
        self.parked: asyncio.Task[Any] | None = None
        # agent sockets: the recv leases this connection holds (`leases.held` > 0: the
        # connection is not idle, whatever its silence)
        self.leases: ConnectionLeases | None = None

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.parked is not None:
            self.parked.cancel(LOST)
        super().connection_lost(exc)


LOST = "connection lost"


class _UnixServer:
    def __init__(self, path: Path, backlog: int = Sockets().backlog) -> None:
        self.path = check_socket_path(path)
        self.backlog = backlog
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.Task[Any]] = set()
        self._closed = False

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def _prepare_dir(self) -> None:
        # whatever is at the path (a stale socket, or a directory or link an agent left in a
        # socket dir it once owned) goes, and the dir is the core's: one agent's files never
        # stop the hive from serving
        safefs.prepare_socket(self.path)

    async def start(self) -> None:
        self._prepare_dir()
        loop = asyncio.get_running_loop()

        def factory() -> _Protocol:
            reader = asyncio.StreamReader(limit=MAX_LINE + 2, loop=loop)
            return _Protocol(reader, self._on_connect)

        self._server = await loop.create_unix_server(
            factory, path=str(self.path), backlog=self.backlog
        )

    def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._conns.add(task)
            task.add_done_callback(self._conns.discard)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._server is not None:
            self._server.close()
        for t in list(self._conns):
            t.cancel()
        if self._conns:
            await asyncio.gather(*self._conns, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


class AgentSocketServer(_UnixServer):
    """Serves one agent's socket. `connections` counts live connections (an external harness
    connected = the agent is running, for the `external` runtime)."""

    def __init__(
        self,
        path: Path,
        caller: Callable[[], Caller],
        verbs: Callable[[], VerbRegistry],
        dispatcher: Dispatcher,
        on_connections: Callable[[int], None] | None = None,
        owner_uid: int | None = None,
        limits: Sockets | None = None,
        agent: str = "",
        leases: Callable[[], ConnectionLeases] | None = None,
    ) -> None:
        self.limits = limits or Sockets()
        super().__init__(path, self.limits.backlog)
        self.agent = agent or path.parent.name
        self._owner_uid = owner_uid
        self._refusing = False
        self._caller = caller
        self._verbs = verbs
        self._dispatcher = dispatcher
        self._on_connections = on_connections
        self._new_leases = leases
        self._leases: set[ConnectionLeases] = set()
        self.connections = 0

    def leases_held(self) -> int:
        """Messages leased to this socket's live connections and not yet acknowledged."""
        return sum(book.held for book in self._leases)

    async def start(self) -> None:
        await super().start()
        if self._owner_uid is not None:  # a sandboxed agent runs as its own uid
            os.chown(self.path, self._owner_uid, -1)
            os.chmod(self.path, 0o600)

    async def _dispatch_watching(
        self, writer: asyncio.StreamWriter, caller: Caller, req: Request
    ) -> Reply | None:
        """Dispatch, but give up (None) if the connection is lost meanwhile. Only requests
        that may park are watched: the connection's own task is cancelled by the protocol
        (no extra tasks per request), and only that cancel is swallowed here."""
        proto = writer.transport.get_protocol()
        if not req.may_park() or not isinstance(proto, _Protocol):
            return await self._dispatcher.dispatch(caller, req)
        if proto.lost:
            return None
        task = asyncio.current_task()
        assert task is not None
        proto.parked = task
        try:
            return await self._dispatcher.dispatch(caller, req)
        except asyncio.CancelledError:
            if proto.lost and task.cancelling() == 1:
                task.uncancel()
                return None
            raise
        finally:
            proto.parked = None

    async def _on_connect(  # type: ignore[override]
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        super()._on_connect(reader, writer)
        if self.connections >= self.limits.max_connections_per_agent:
            await self._refuse(writer)
            return
        self._refusing = False
        self.connections += 1
        if self._on_connections:
            self._on_connections(self.connections)
        idle = self.limits.idle_timeout_seconds
        leases = self._new_leases() if self._new_leases is not None else None
        if leases is not None:
            self._leases.add(leases)
            proto = writer.transport.get_protocol()
            if isinstance(proto, _Protocol):
                proto.leases = leases
        try:
            while True:
                try:
                    async with asyncio.timeout(idle):
                        line = await read_line(reader)
                except TimeoutError:
                    if leases is not None and leases.held:
                        continue  # holding a lease is not idle: its lease timeout judges that
                    logger.debug(
                        "closing %s's connection idle for %.0f s",
                        self.agent,
                        idle,
                        extra={"action": "socket_idle_closed", "agent": self.agent},
                    )
                    break
                except _LineTooLong:
                    await _write(
                        writer, error_body(BadRequest(f"request line is over {MAX_LINE} bytes"))
                    )
                    continue
                if line is None:
                    break
                if not line.strip():
                    continue
                caller = self._caller()
                if leases is not None:
                    leases.touch()  # a request is a sign of life: renew what it holds
                    caller = dataclasses.replace(caller, leases=leases)
                try:
                    req = parse_request(line, self._verbs())
                except HiveError as exc:
                    await _write(writer, error_body(exc))
                    continue
                reply = await self._dispatch_watching(writer, caller, req)
                if reply is None or not await _send_reply(writer, reply, {}):
                    break
        except (ConnectionError, OSError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            if leases is not None:
                leases.close()  # whatever it still holds is unread again
                self._leases.discard(leases)
            self.connections -= 1
            if self._on_connections:
                self._on_connections(self.connections)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _refuse(self, writer: asyncio.StreamWriter) -> None:
        """One error line, then close: the agent is at its connection cap (logged once per
        run of refusals, not once per connect)."""
        cap = self.limits.max_connections_per_agent
        if not self._refusing:
            self._refusing = True
            logger.warning(
                "%s holds %d connections, its cap: refusing more",
                self.agent,
                cap,
                extra={"action": "socket_cap_reached", "agent": self.agent},
            )
        err = Unavailable(
            f"{self.agent} already has {cap} connections open (the cap, "
            "[sockets] max_connections_per_agent): close one and retry"
        )
        try:
            await _write(writer, error_body(err))
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


class HostSocketServer(_UnixServer):
    """The host admin socket (hyperhive v1 framing)."""

    def __init__(
        self,
        path: Path,
        verbs: VerbRegistry,
        dispatcher: Dispatcher,
        group: int | None = None,
        backlog: int = Sockets().backlog,
        stall_seconds: float = Sockets().host_stream_stall_seconds,
    ) -> None:
        super().__init__(path, backlog)
        self._stall = stall_seconds
        self._group = group
        self._verbs = verbs
        self._dispatcher = dispatcher

    def _prepare_dir(self) -> None:
        super()._prepare_dir()
        with contextlib.suppress(OSError):
            os.chmod(self.path.parent, 0o751)

    async def start(self) -> None:
        await super().start()
        secure_host_sock(self.path, self._group)  # 0600, or 0660 for `[access] group`

    async def _on_connect(  # type: ignore[override]
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        super()._on_connect(reader, writer)
        head = {"version": HOST_VERSION}
        try:
            try:
                line = await asyncio.wait_for(read_line(reader), HOST_ANSWER_TIMEOUT)
            except _LineTooLong:
                await _write(
                    writer, {**head, **error_body(BadRequest("request line is over 1 MiB"))}
                )
                return
            except TimeoutError:
                await _write(writer, {**head, **error_body(BadRequest("no request within 5 s"))})
                return
            if line is None or not line.strip():
                await _write(writer, {**head, **error_body(BadRequest("empty request"))})
                return
            try:
                req = parse_request(line, self._verbs)
            except HiveError as exc:
                await _write(writer, {**head, **error_body(exc)})
                return
            caller = Caller("operator", "operator")
            reply = await self._dispatcher.dispatch(caller, req)
            if not await _send_reply(writer, reply, head):
                return
            if reply.stream is not None:
                async for item in reply.stream:
                    try:
                        async with asyncio.timeout(self._stall):
                            await _write(writer, {**head, **item})
                    except TimeoutError:
                        # a reader that takes nothing: drop it and what is buffered for it
                        logger.info(
                            "dropping a host stream whose reader took no line in %.0f s",
                            self._stall,
                            extra={"action": "host_stream_stalled", "agent": None},
                        )
                        writer.transport.abort()
                        return
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
