"""Agent lifecycle: spawn, start, stop, kill, restart, rebuild, destroy (+purge), on the
runtime each agent is configured for, with transients visible while an action runs.

Invariants:
- One action per agent at a time (a per-agent lock); while it runs, a transient
  (`spawning`, `starting`, `stopping`, `restarting`, `rebuilding`, `destroying`) is set, shown in
  `agent_status` and published (`transient_set` / `transient_cleared`), and always cleared.
  `action()` is the one helper every surface goes through.
- The desired state (`running` / `stopped`) is persisted per agent (`agents/<name>/desired`),
  so a restarted daemon re-adopts running sandboxes and starts those that should run, never
  starting a duplicate.
- After start / restart / rebuild the agent gets a `system` kick event in its inbox.
- An exit the core did not ask for is a crash (`failed`), reported by the crash watch.
- Manager tools can never target the manager itself.
- start / stop / kill / restart / rebuild of an external agent are refused (`NotSupported`):
  nothing of it runs under the hive, so no action may answer ok (or queue a kick).
- `kill` and `restart` take an optional generation and refuse a mismatch, so a stale request
  never hits a new incarnation of the same name.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from hyperhive import tracing
from hyperhive.claudebin import claude_binary_or_none
from hyperhive.core.feature import BaseFeature
from hyperhive.core.rpc import Caller
from hyperhive.errors import Conflict, Forbidden, HiveError, NotFound, NotSupported
from hyperhive.names import validate_name
from hyperhive.runtime.base import LaunchSpec, Limits, Runtime, RuntimeStatus
from hyperhive.runtime.bytecode import compile_package

if TYPE_CHECKING:
    from hyperhive.core.hive import Hive

logger = logging.getLogger(__name__)


class ConfigOps(Protocol):
    """What the lifecycle needs of the config repos (core/configs.py)."""

    def applied_sha(self, name: str) -> str | None: ...

    async def ensure_applied(self, name: str) -> str | None: ...

    async def remove_applied(self, name: str) -> bool: ...

    def manager_binds(self) -> list[tuple[Path, str, bool]]: ...


class ModelSockets(Protocol):
    """What the lifecycle needs of the model proxy (core/modelproxy.py): each agent's model
    socket open while it may run."""

    async def open(self, name: str) -> None: ...

    async def close(self, name: str) -> None: ...


KICK = (
    "you were just (re)started; your notes are in {state}; your conversation (session) "
    "continues where it left off"
)
INSIDE_SOCK = "/run/hive/hive.sock"
INSIDE_STATE = "/state"


class Placement(Protocol):
    """Which agents this node runs (core/nodes.py), in a hive spread over several hosts."""

    def owns(self, agent: str) -> bool: ...


class Lifecycle(BaseFeature):
    """`configs` / `model_sockets`: the config repos and model proxy, when the hive runs them
    (without configs an agent runs from whatever `applied/<name>` holds; without the proxy its
    claude reaches the model directly). Both start before the lifecycle."""

    name = "lifecycle"

    def __init__(
        self,
        *,
        configs: ConfigOps | None = None,
        model_sockets: ModelSockets | None = None,
        runtime_factory: Callable[[str], Runtime] | None = None,
        placement: Placement | None = None,
    ) -> None:
        self.configs = configs
        self.model_sockets = model_sockets
        self.placement = placement  # None: a single-node hive, every agent is ours
        self.after = tuple(
            n
            for n, dep in (
                ("configs", configs),
                ("model_proxy", model_sockets),
                ("nodes", placement),
            )
            if dep is not None
        )
        self._runtime_factory = runtime_factory
        self._runtimes: dict[str, Runtime] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.transients: dict[str, str] = {}
        self.expected_exit: set[str] = set()
        self.built_rev: dict[str, str] = {}

    # -- setup ------------------------------------------------------------------------------

    async def start(self, hive: Hive) -> None:
        self.hive = hive
        from hyperhive.core import verbs_lifecycle

        verbs_lifecycle.register(hive, self)

    async def after_start(self) -> None:
        """Called by the hive once sockets are open: adopt or start agents that should run
        (on the hive's first start, the manager it just registered)."""
        manager = self.hive.registry.manager()
        if self.hive.first_start and manager is not None:
            self.set_desired(manager.name, "running")
        proxy = self.model_sockets
        for rec in self.hive.registry.all():
            if rec.runtime == "external":
                continue
            if self.placement is not None and not self.placement.owns(rec.name):
                continue  # another node runs its sandbox
            if proxy is not None:  # a re-adopted agent's next turn needs its model socket back
                await proxy.open(rec.name)
            try:
                status = await self.runtime_for(rec.name).adopt(self.spec(rec.name))
            except Exception:
                logger.exception(
                    "adopting %s failed",
                    rec.name,
                    extra={"action": "adopt_failed", "agent": rec.name},
                )
                continue
            if status.running:
                self.built_rev[rec.name] = status.config_rev
                logger.info(
                    "re-adopted %s (pid %s)",
                    rec.name,
                    status.pid,
                    extra={"action": "adopted", "agent": rec.name},
                )
            elif self.desired(rec.name) == "running":
                try:
                    await self.start_agent(rec.name)
                except HiveError as exc:  # the daemon comes up anyway; the agent stays down
                    logger.warning(
                        "starting %s at boot failed: %s",
                        rec.name,
                        exc,
                        extra={"action": "boot_start_failed", "agent": rec.name},
                    )

    async def aclose(self) -> None:
        for rt in self._runtimes.values():
            try:
                await rt.aclose()
            except Exception:
                logger.exception(
                    "closing the %s runtime failed", rt.name, extra={"action": "runtime_close"}
                )

    def runtime_for(self, name: str) -> Runtime:
        rec = self.hive.registry.require(name)
        rt_name = rec.runtime
        if rt_name not in self._runtimes:
            if self._runtime_factory is not None:
                self._runtimes[rt_name] = self._runtime_factory(rt_name)
            else:
                from hyperhive.runtime.choose import make_runtime

                options = {"scope": self.hive.scope} if rt_name in ("bwrap", "process") else {}
                self._runtimes[rt_name] = make_runtime(rt_name, **options)
        return self._runtimes[rt_name]

    def resource_usage(self, name: str) -> dict[str, float]:
        """The agent's sandbox's memory and CPU now (metrics); empty when unknown."""
        try:
            return self.runtime_for(name).resource_usage(name)
        except Exception:  # an unknown runtime or a racing destroy: no figures, no error
            return {}

    # -- desired state ----------------------------------------------------------------------

    def _desired_file(self, name: str) -> Path:
        return self.hive.paths.agent_dir(name) / "desired"

    def desired(self, name: str) -> str:
        try:
            return self._desired_file(name).read_text().strip() or "stopped"
        except FileNotFoundError:
            return "stopped"

    def set_desired(self, name: str, state: str) -> None:
        path = self._desired_file(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(state + "\n")

    # -- specs ------------------------------------------------------------------------------

    def configured_runtime(self, name: str) -> str | None:
        """The `runtime` key of `name`'s applied agent.toml (None: the hive default)."""
        self.hive.agent_configs.invalidate(name)
        return self.hive.agent_configs.get_or_default(name).runtime

    async def _follow_configured_runtime(self, name: str) -> None:
        """Move a stopped agent to the runtime its applied config names (the callers halted
        it first, or found nothing running, on its old runtime)."""
        configured = self.configured_runtime(name)
        rec = self.hive.registry.require(name)
        if configured is None or configured == rec.runtime:
            return
        logger.info(
            "%s moves from runtime %s to %s (its agent.toml)",
            name,
            rec.runtime,
            configured,
            extra={"action": "runtime_changed", "agent": name},
        )
        await self.hive.registry.update(name, runtime=configured)

    def config_rev(self, name: str) -> str:
        """The applied config revision a sandbox would be built from."""
        if self.configs is not None:
            return self.configs.applied_sha(name) or ""
        path = self.hive.paths.applied_dir(name) / "agent.toml"
        try:
            import hashlib

            return hashlib.sha1(path.read_bytes()).hexdigest()
        except FileNotFoundError:
            return ""

    def uid_for(self, name: str) -> int | None:
        if os.geteuid() != 0:
            return None
        from hyperhive.runtime.uids import UidTable

        return UidTable(self.hive.paths.home / "uids.json").allocate(name)

    def repo_owner(self, name: str) -> tuple[int, int] | None:
        """Config repos belong to the manager's uid, so it can commit in them."""
        manager = self.hive.registry.manager()
        uid = self.sandbox_uid(manager.name) if manager is not None else None
        return (uid, uid) if uid is not None else None

    def sandbox_uid(self, name: str) -> int | None:
        """The agent's own uid when it runs sandboxed under a root daemon, else None."""
        rec = self.hive.registry.get(name)
        if rec is None or rec.runtime != "bwrap":
            return None
        return self.uid_for(name)

    def model_env(self, name: str) -> dict[str, str]:
        """How the agent's claude reaches its model: through the core's per-agent model
        socket for an http endpoint (works in every network mode), else directly."""
        ep = self.hive.config.model_endpoint
        env: dict[str, str] = {
            "HIVE_RATE_LIMIT_WAIT": str(ep.rate_limit_wait_seconds),
            "HIVE_MODEL_RETRIES": str(ep.retries),
            "HIVE_TURN_ATTEMPTS": str(ep.turn_attempts),
            "HIVE_RETRY_WAIT": str(ep.retry_wait_seconds),
        }
        base = ep.base_url.replace("{agent}", name)
        if base.startswith("http://"):
            env["HIVE_MODEL_SOCKET"] = "model.sock"  # relative to the agent's socket dir
            env["HIVE_MODEL_BASE_URL"] = base  # the harness rewrites the host part
        elif base:
            env["HIVE_MODEL_BASE_URL"] = base
        if ep.api_key_file:
            with contextlib.suppress(OSError):
                env["HIVE_API_KEY"] = Path(ep.api_key_file).read_text().strip()
        elif base:
            env["HIVE_API_KEY"] = "hyperhive"
        return env

    def spec(self, name: str) -> LaunchSpec:
        hive = self.hive
        rec = hive.registry.require(name)
        cfg = hive.agent_configs.get_or_default(name)
        paths = hive.paths
        isolated = rec.runtime == "bwrap"
        sock = INSIDE_SOCK if isolated else str(paths.agent_sock(name))
        state = INSIDE_STATE if isolated else str(paths.state_dir(name))
        # the lean entry (not the whole `hive` CLI): ~120 ms and ~2 MB less per agent start
        argv = [
            sys.executable,
            "-m",
            "hyperhive.harness.main",
            "--socket",
            sock,
            "--state-dir",
            state,
        ]
        # OTEL_*: the harness traces its turns when the core does (docs/operations.md)
        env = {**tracing.passthrough_env(), **cfg.env, **self.model_env(name)}
        timeout = cfg.turn_timeout_seconds
        if timeout is None:
            timeout = hive.config.defaults.turn_timeout_seconds
        env["HIVE_TURN_TIMEOUT"] = str(timeout)
        warm = cfg.warm_seconds
        env["HIVE_WARM_SECONDS"] = str(hive.config.defaults.warm_seconds if warm is None else warm)
        # the one resolver, once per start: the harness runs what the core found, and a
        # sandbox binds it (a binary outside the default binds would not exist inside)
        claude = claude_binary_or_none(configured=hive.config.defaults.claude_bin)
        if claude is not None:
            env["HIVE_CLAUDE_BIN"] = str(claude)
        limits_cfg = hive.config.limits
        limits = Limits(
            memory_mb=cfg.limits.memory_mb
            if cfg.limits.memory_mb is not None
            else limits_cfg.memory_mb,
            pids=cfg.limits.pids if cfg.limits.pids is not None else limits_cfg.pids,
            cpu_percent=cfg.limits.cpu_percent
            if cfg.limits.cpu_percent is not None
            else limits_cfg.cpu_percent,
        )
        network = cfg.network or hive.config.defaults.network
        if network == "auto":
            from hyperhive.runtime.choose import egress_support

            network = "egress" if egress_support() is None else "none"
        ro: list[tuple[Path, Path]] = [
            (Path(p), Path(p)) for p in cfg.packages.ro_paths if Path(p).exists()
        ]
        if claude is not None and isolated:
            ro.append((claude, claude))
        rw: list[tuple[Path, Path]] = []
        if rec.kind == "manager" and self.configs is not None:
            for host, inside, writable in self.configs.manager_binds():
                (rw if writable else ro).append((Path(host), Path(inside)))
        return LaunchSpec(
            name=name,
            argv=argv,
            state_dir=paths.state_dir(name),
            sock_dir=paths.sock_dir(name),
            shared_dir=paths.shared_dir,
            log_dir=paths.logs_dir(name),
            env=env,
            uid=self.uid_for(name) if isolated else None,
            network=network,
            limits=limits,
            ro_binds=ro,
            rw_binds=rw,
            config_rev=self.config_rev(name),
            git_name=name,
            allow_userns=cfg.allow_user_namespaces,
        )

    # -- the one action helper --------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def action(self, name: str, transient: str) -> AsyncIterator[None]:
        """Serialise actions per agent and show `transient` while this one runs."""
        lock = self._locks.setdefault(name, asyncio.Lock())
        if lock.locked():
            raise Conflict(
                f"{name} is busy ({self.transients.get(name, 'working')}); try again when it finishes"
            )
        async with lock:
            self.transients[name] = transient
            self.hive.hub.publish("transient_set", agent=name, transient=transient)
            try:
                yield
            finally:
                self.transients.pop(name, None)
                self.hive.hub.publish("transient_cleared", agent=name, transient=transient)

    async def _kick(self, name: str) -> None:
        if self.hive.registry.require(name).runtime == "external":
            return  # nothing was (re)started here: its own harness keeps its own session
        state = (
            INSIDE_STATE
            if self.hive.registry.require(name).runtime == "bwrap"
            else str(self.hive.paths.state_dir(name))
        )
        await self.hive.broker.system_event(name, "kick", note=KICK.format(state=state))

    async def _launch(self, name: str) -> RuntimeStatus:
        if self.configs is not None:  # agents made without an approval still get a config repo
            await self.configs.ensure_applied(name)
            self.hive.agent_configs.invalidate(name)
        await self._follow_configured_runtime(name)
        if self.hive.registry.require(name).runtime == "external":  # moved outside the hive
            await self.hive.open_socket(name)
            self.set_desired(name, "stopped")
            return RuntimeStatus(name=name, running=False)
        spec = self.spec(name)
        for d in (spec.state_dir, spec.log_dir, spec.sock_dir, spec.shared_dir):
            d.mkdir(parents=True, exist_ok=True)
        await self.hive.open_socket(name)
        if self.model_sockets is not None:
            await self.model_sockets.open(name)
        self.expected_exit.discard(name)
        if self.hive.registry.require(name).runtime in ("bwrap", "process"):
            # they start a python harness, which may not write .pyc files (a read-only
            # sandbox): give it compiled ones (a check once per daemon process)
            await compile_package()
        status = await self.runtime_for(name).start(spec)
        self.built_rev[name] = spec.config_rev
        self.set_desired(name, "running")
        return status

    async def _halt(self, name: str, graceful: bool, timeout: float = 60.0) -> RuntimeStatus:
        rt = self.runtime_for(name)
        self.expected_exit.add(name)
        if graceful:
            return await rt.stop(name, timeout)
        return await rt.kill(name)

    # -- operations -------------------------------------------------------------------------

    def require_managed(self, name: str, verb: str) -> None:
        """Refuse `verb` on an agent the hive does not run (external runtime), unless its
        applied config moves it to a hive runtime (start/restart/rebuild then launch it)."""
        rec = self.hive.registry.require(name)
        if rec.runtime != "external":
            return
        moving = verb in ("start", "restart", "rebuild") and self.configured_runtime(name) not in (
            None,
            "external",
        )
        if not moving:
            raise NotSupported(
                f"{name} runs outside the hive (external runtime): hyperhive cannot {verb} it; "
                "its harness is started and stopped where it runs"
            )

    async def spawn_agent(
        self, name: str, *, runtime: str | None = None, requested_by: str | None = None
    ) -> None:
        validate_name(name)
        if self.hive.registry.get(name) is None:
            configured = self.configured_runtime(name)  # a revived tombstone's kept config too
            if runtime and configured and runtime != configured:
                raise Conflict(
                    f"{name}'s agent.toml says runtime = {configured!r}, not {runtime!r}: "
                    "change the config (request_apply_commit) or leave --runtime out"
                )
            await self.hive.registry.register(
                name,
                "agent",
                runtime=runtime or configured or self.hive.default_runtime(),
                parent=requested_by,
            )
        await self.hive.open_socket(name)
        if self.hive.registry.require(name).runtime == "external":
            return
        async with self.action(name, "spawning"):
            status = await self.runtime_for(name).status(name)
            if not status.running:
                await self._launch(name)
        await self._kick(name)

    async def start_agent(self, name: str) -> None:
        self.require_managed(name, "start")
        async with self.action(name, "starting"):
            status = await self.runtime_for(name).status(name)
            if status.running:
                return
            await self._launch(name)
        await self._kick(name)

    async def stop_agent(self, name: str, graceful: bool = True, timeout: float = 60.0) -> None:
        self.require_managed(name, "stop")
        async with self.action(name, "stopping"):
            self.set_desired(name, "stopped")
            await self._halt(name, graceful, timeout)

    def check_generation(self, name: str, generation: int | None) -> None:
        """Refuse an action meant for another incarnation of `name` (a stale kill or restart
        from before a destroy and re-spawn); None means "whichever is current"."""
        current = self.hive.registry.require(name).generation
        if generation is not None and generation != current:
            raise Conflict(
                f"{name} is generation {current}, not {generation}: the agent you meant "
                "was destroyed and this is a new one; nothing done"
            )

    async def kill_agent(self, name: str, generation: int | None = None) -> None:
        self.check_generation(name, generation)  # first: a stale request is about another agent
        self.require_managed(name, "kill")
        async with self.action(name, "stopping"):
            self.check_generation(name, generation)  # again, under the lock (a racing destroy)
            self.set_desired(name, "stopped")
            await self._halt(name, graceful=False)
        manager = self.hive.registry.manager()
        if manager is not None and manager.name != name:
            await self.hive.broker.system_event(manager.name, "killed", agent=name)

    async def restart(self, name: str, generation: int | None = None) -> None:
        self.check_generation(name, generation)  # first: a stale request is about another agent
        self.require_managed(name, "restart")
        async with self.action(name, "restarting"):
            self.check_generation(name, generation)
            await self._halt(name, graceful=True, timeout=30.0)
            await self._launch(name)
        await self._kick(name)

    async def rebuild(self, name: str) -> None:
        """Re-create the sandbox from the current applied config (restart if running)."""
        self.require_managed(name, "rebuild")
        async with self.action(name, "rebuilding"):
            status = await self.runtime_for(name).status(name)
            was_running = status.running or self.desired(name) == "running"
            if status.running:
                await self._halt(name, graceful=True, timeout=30.0)
            self.hive.agent_configs.invalidate(name)
            if was_running:
                await self._launch(name)
        if was_running:
            await self._kick(name)

    async def destroy(self, name: str, purge: bool = False) -> None:
        rec = self.hive.registry.require(name)
        if rec.kind == "manager":
            raise Forbidden("the manager cannot be destroyed")
        async with self.action(name, "destroying"):
            if rec.runtime != "external":
                try:
                    await self._halt(name, graceful=False)
                except HiveError as exc:  # gone already, or never started: destroy anyway
                    logger.info(
                        "halting %s before destroying it: %s",
                        name,
                        exc,
                        extra={"action": "destroy_halt", "agent": name},
                    )
            await self.hive.close_socket(name)
            if self.model_sockets is not None:
                await self.model_sockets.close(name)
            await self.hive.registry.remove(name)
            self.set_desired(name, "stopped")
        if purge:
            await self.purge(name)

    async def purge(self, name: str) -> None:
        validate_name(name)
        if self.hive.registry.get(name) is not None:
            raise Conflict(f"{name} is a live agent: destroy it first")
        paths = self.hive.paths
        found = False
        if self.configs is not None:
            found = await self.configs.remove_applied(name)  # a symlink to kept trees
        for d in (
            paths.agent_dir(name),
            paths.applied_dir(name),
            paths.sock_dir(name),
            paths.config_repo(name),
        ):
            if d.is_symlink():
                d.unlink()
                found = True
            elif d.exists():
                found = True
                await asyncio.to_thread(shutil.rmtree, d, True)
        if not found:
            raise NotFound(f"nothing is kept under the name {name!r}")
        self.hive.hub.publish("tombstone_purged", agent=name)

    async def status(self, name: str) -> RuntimeStatus:
        return await self.runtime_for(name).status(name)

    async def status_fields(self, agent: str) -> dict[str, Any]:
        rec = self.hive.registry.get(agent)
        if rec is None:
            return {}
        fields: dict[str, Any] = {}
        if agent in self.transients:
            fields["transient"] = self.transients[agent]
        if rec.runtime == "external":
            return fields
        st = await self.runtime_for(agent).status(agent)
        fields["running"] = st.running
        return fields

    def guard_manager_target(self, caller: Caller, name: str) -> None:
        if caller.name == name:
            raise Forbidden("you cannot target yourself (that would cut your own legs)")
