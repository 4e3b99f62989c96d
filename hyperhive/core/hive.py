"""`Hive`: the core daemon's parts assembled, as one async context manager.

Start order: home dirs + single-daemon lock → database (migrations) → event hub → registry →
broker → dispatchers + built-in verbs → features' `start` (in their declared order) → the
manager on first start → one socket per agent → host admin socket → features' `after_start` →
background tasks. Close runs the reverse; agents' sandboxes are left running (they survive the
daemon) unless a feature decides otherwise.

The hive does not choose its features: the composition root (`hyperhive.assembly`) builds them
with their dependencies and hands them over; `Hive(paths)` alone runs none. What the core itself
needs of the lifecycle (spawning with a sandbox, the uid an agent's socket belongs to) comes in
as the narrow `Launcher` protocol. Surfaces (web, CLI verbs, tests) read a running feature
through the typed properties below (`hive.lifecycle`, ...); features never do: they get what
they need of each other in their constructors.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
from collections.abc import Sequence
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, Protocol, Self, cast

from hyperhive.clock import Clock
from hyperhive.config import HiveConfig, load_config
from hyperhive.core.access import secure_home
from hyperhive.core.agentstates import AgentStates
from hyperhive.core.broker import Broker
from hyperhive.core.events import EventHub
from hyperhive.core.feature import Feature, start_order
from hyperhive.core.followups import FollowupRegistry
from hyperhive.core.leases import ConnectionLeases
from hyperhive.core.policy import AgentConfigs, install_send_policy
from hyperhive.core.registry import AgentRegistry
from hyperhive.core.retention import sweep_all
from hyperhive.core.rpc import Caller, Dispatcher
from hyperhive.core.servers import AgentSocketServer, HostSocketServer
from hyperhive.core.store.backend import (
    Storage,
    backend_kind,
    database_url,
    open_storage,
    redact,
    sqlite_database,
)
from hyperhive.core.tasks import Supervisor
from hyperhive.db import Database
from hyperhive.errors import Conflict, NotSupported, Unavailable
from hyperhive.paths import HivePaths
from hyperhive.wire.base import AGENT_VERBS, HOST_VERBS, MANAGER_VERBS, VerbRegistry

if TYPE_CHECKING:
    from hyperhive.core.approvals import ApprovalsFeature
    from hyperhive.core.configs import ConfigRepos
    from hyperhive.core.crashwatch import CrashWatch
    from hyperhive.core.lifecycle import Lifecycle
    from hyperhive.core.modelproxy import ModelProxy
    from hyperhive.core.questions import QuestionsFeature
    from hyperhive.core.reminders import RemindersFeature

logger = logging.getLogger(__name__)


class Launcher(Protocol):
    """What the core needs of the lifecycle (core/lifecycle.py), when one is installed."""

    async def spawn_agent(
        self, name: str, *, runtime: str | None = None, requested_by: str | None = None
    ) -> None: ...

    def sandbox_uid(self, name: str) -> int | None: ...


class Surface(Protocol):
    """A feature that serves the hive over HTTP (the dashboard)."""

    @property
    def url(self) -> str:
        """Its base URL once it serves, "" before."""
        ...


class FeatureMissing(NotSupported, AttributeError):
    """This hive runs without the feature asked for (`getattr(hive, x, None)` sees None)."""


class Hive:
    def __init__(
        self,
        paths: HivePaths,
        config: HiveConfig | None = None,
        *,
        clock: Clock | None = None,
        features: Sequence[Feature] = (),
        launcher: Launcher | None = None,
        database: str | None = None,
    ) -> None:
        self.paths = paths
        self.config = config if config is not None else load_config(paths.config_file)
        self.clock = clock or Clock()
        self.hub = EventHub()
        self.tasks = Supervisor("hive")
        self.agent_rpc = Dispatcher()
        self.host_rpc = Dispatcher()
        self.features: list[Feature] = start_order(features)
        self._by_name = {f.name: f for f in self.features}
        self.launcher = launcher
        # the storage URL: `database` (hive serve --db) > HIVE_DATABASE_URL > [database] url
        self.database_url = database_url(database, self.config.database.url)
        backend_kind(self.database_url)  # an unknown scheme fails here, before anything starts
        self._sockets: dict[str, AgentSocketServer] = {}
        self._host: HostSocketServer | None = None
        self._lock_file: IO[str] | None = None
        self._stop = asyncio.Event()
        self._started: list[Any] = []
        self._closed = False
        self.storage: Storage
        self.db: Database  # the sqlite backend's database (absent on PostgreSQL)
        self.registry: AgentRegistry
        self.broker: Broker
        self.agent_states: AgentStates
        self.followups = FollowupRegistry()  # followup sources by id prefix (q:, a:, ...)
        self.first_start = False  # this start registered the manager (a fresh hive)

    # -- the running features, for surfaces ---------------------------------------------------

    def runs(self, name: str) -> bool:
        """Whether this hive runs the feature called `name`."""
        return name in self._by_name

    def feature(self, name: str) -> Feature:
        """The running feature called `name`; `FeatureMissing` if this hive runs without it."""
        try:
            return self._by_name[name]
        except KeyError:
            raise FeatureMissing(f"this hive runs without the {name} feature") from None

    @property
    def lifecycle(self) -> Lifecycle:
        return cast("Lifecycle", self.feature("lifecycle"))

    @property
    def crash_watch(self) -> CrashWatch:
        return cast("CrashWatch", self.feature("crash_watch"))

    @property
    def model_proxy(self) -> ModelProxy:
        return cast("ModelProxy", self.feature("model_proxy"))

    @property
    def configs(self) -> ConfigRepos:
        return cast("ConfigRepos", self.feature("configs"))

    @property
    def approvals(self) -> ApprovalsFeature:
        return cast("ApprovalsFeature", self.feature("approvals"))

    @property
    def questions(self) -> QuestionsFeature:
        return cast("QuestionsFeature", self.feature("questions"))

    @property
    def reminders(self) -> RemindersFeature:
        return cast("RemindersFeature", self.feature("reminders"))

    @property
    def dashboard_url(self) -> str:
        """The dashboard's URL once it serves; "" before, or when this hive runs without it."""
        if not self.runs("dashboard"):
            return ""
        return cast("Surface", self.feature("dashboard")).url

    @property
    def scope(self) -> str:
        """A short id of this hive (from its home path) that keeps host-global names — cgroups,
        network namespaces — of two hives on one machine apart."""
        import hashlib

        return hashlib.sha1(str(self.paths.home.resolve()).encode()).hexdigest()[:8]

    # -- lifecycle ----------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        try:
            await self.start()
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def _take_lock(self) -> None:
        self.paths.run_dir.mkdir(parents=True, exist_ok=True)
        f = open(self.paths.run_dir / "hive.lock", "a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            raise Conflict(f"another hive daemon is already running on {self.paths.home}") from None
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        self._lock_file = f

    async def start(self) -> None:
        for d in (
            self.paths.home,
            self.paths.agents_dir,
            self.paths.applied_root,
            self.paths.configs_root,
            self.paths.shared_dir,
        ):
            d.mkdir(parents=True, exist_ok=True)
        self._group = secure_home(self.paths.home, self.config.access.group)
        self._take_lock()
        self.paths.shared_dir.chmod(0o1777)  # /shared: every agent uid writes, sticky like /tmp
        self.storage = open_storage(self.database_url, self.paths.db_file, tasks=self.tasks)
        await self.storage.open()
        self._started.append(self.storage)
        db = sqlite_database(self.storage)
        if db is not None:
            self.db = db
        logger.info("storage: %s", redact(self.storage.url), extra={"action": "storage_opened"})
        self.registry = AgentRegistry(self.storage.agents, self.hub)
        await self.registry.load()
        self.broker = Broker(self.storage.messages, self.registry, self.hub, self.clock)
        self.storage.on_remote_messages(self.broker.remote_committed)
        self.storage.on_remote_rows(self.broker.remote_rows)
        self.agent_states = AgentStates(self.hub, self.clock)
        self.agent_configs = AgentConfigs(self)
        install_send_policy(self)

        from hyperhive.core import verbs_agent, verbs_host

        verbs_agent.register(self)
        verbs_host.register(self)
        for feature in self.features:
            await feature.start(self)
            self._started.append(feature)

        manager = self.config.manager.name
        self.first_start = self.registry.manager() is None
        if self.first_start:
            await self.registry.register(manager, "manager", runtime=self.default_runtime())
        for name in self.registry.names():
            await self.open_socket(name)
        self._host = HostSocketServer(
            self.paths.host_sock,
            HOST_VERBS,
            self.host_rpc,
            group=self._group,
            backlog=self.config.sockets.backlog,
            stall_seconds=self.config.sockets.host_stream_stall_seconds,
        )
        await self._host.start()
        for feature in self.features:
            await feature.after_start()
        self.tasks.spawn("retention", self._retention_loop, restart=True)
        self.tasks.spawn("agent-states", self._agent_states_loop, restart=True)
        self.hub.publish("hive_started", home=str(self.paths.home))
        logger.info("hive up at %s", self.paths.home, extra={"action": "hive_started"})

    def default_runtime(self) -> str:
        """The hive-wide default (`auto`: bwrap where sandboxes work, else process)."""
        rt = self.config.defaults.runtime
        if rt != "auto":
            return rt
        from hyperhive.runtime.choose import default_runtime_name

        return default_runtime_name()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        await self.tasks.aclose()
        if self._host is not None:
            await self._host.aclose()
        for name in list(self._sockets):
            await self.close_socket(name)
        if hasattr(self, "broker"):
            await self.broker.drain()
        for part in reversed(self._started):
            try:
                await part.aclose()
            except Exception:
                logger.exception("closing %r failed", part)
        self._started.clear()
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None
        logger.info("hive stopped", extra={"action": "hive_stopped"})

    def request_stop(self) -> None:
        self._stop.set()

    async def wait_stop_request(self) -> None:
        """Until `request_stop` or a critical task dies (then raise its error). Closing is
        still the caller's (`aclose`); this only waits for the reason to."""
        stop = asyncio.ensure_future(self._stop.wait())
        failed = asyncio.ensure_future(self.tasks.failed.wait())
        try:
            await asyncio.wait({stop, failed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            failed.cancel()
        if self.tasks.failure is not None:
            raise Unavailable(f"a critical task died: {self.tasks.failure!r}")

    # -- agent sockets ------------------------------------------------------------------------

    def verbs_for(self, name: str) -> VerbRegistry:
        rec = self.registry.get(name)
        return MANAGER_VERBS if rec is not None and rec.kind == "manager" else AGENT_VERBS

    def caller_for(self, name: str) -> Caller:
        rec = self.registry.get(name)
        if rec is None:
            return Caller(name, "agent")
        return Caller(name, rec.kind)

    async def open_socket(self, name: str) -> AgentSocketServer:
        if name in self._sockets:
            return self._sockets[name]
        server = AgentSocketServer(
            self.paths.agent_sock(name),
            caller=lambda: self.caller_for(name),
            verbs=lambda: self.verbs_for(name),
            dispatcher=self.agent_rpc,
            on_connections=lambda n: self._connections_changed(name, n),
            owner_uid=self.socket_owner(name),
            limits=self.config.sockets,
            agent=name,
            leases=lambda: ConnectionLeases(self.broker, self.config.delivery.lease_seconds),
        )
        await server.start()
        self._sockets[name] = server
        return server

    def socket_owner(self, name: str) -> int | None:
        """The uid that must be able to connect to this agent's sockets (None: ours)."""
        return self.launcher.sandbox_uid(name) if self.launcher is not None else None

    async def close_socket(self, name: str) -> None:
        server = self._sockets.pop(name, None)
        if server is not None:
            await server.aclose()

    def connections(self, name: str) -> int:
        server = self._sockets.get(name)
        return server.connections if server is not None else 0

    def _connections_changed(self, name: str, n: int) -> None:
        self.hub.publish("agent_connections", agent=name, connections=n)

    # -- operations used by every surface ----------------------------------------------------

    async def spawn(self, name: str, runtime: str | None = None) -> None:
        """Create an agent now: register it, open its socket and (through the launcher, when
        installed) start its sandbox."""
        if self.launcher is not None:
            if self.registry.get(name) is not None:
                raise Conflict(f'agent "{name}" already exists')
            await self.launcher.spawn_agent(name, runtime=runtime)
            return
        rec = await self.registry.register(name, "agent", runtime=runtime or self.default_runtime())
        await self.open_socket(rec.name)

    async def _agent_states_loop(self) -> None:
        from hyperhive.core.status import status_row

        await self.agent_states.run(lambda name: status_row(self, name))

    async def _retention_loop(self) -> None:
        cfg = self.config.retention
        while True:
            try:
                await self.broker.sweep(cfg.messages_days)
            except Exception:
                logger.exception("message sweep failed", extra={"action": "sweep_failed"})
            try:
                await asyncio.to_thread(
                    sweep_all,
                    self.paths.agents_dir,
                    self.clock.now(),
                    cfg.events_days,
                    cfg.events_keep,
                    cfg.turn_stats_days,
                )
            except Exception:
                logger.exception("agent store sweep failed", extra={"action": "sweep_failed"})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), cfg.sweep_interval_seconds)
            if self._stop.is_set():
                return
