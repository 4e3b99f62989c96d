"""The crash watch: orthogonal axes per agent, checked every `interval` seconds.

Axes: running; failed (exited without the core asking — non-zero, killed, or even 0);
logged-in (Claude credentials in its state or a model key/endpoint configured); up-to-date (the
running sandbox was built from the applied config revision); oom-kills (processes the kernel's
OOM killer ended in the agent's cgroup this run: its memory limit was hit, often with the
agent still running).

Invariants: transitions become `system` events to the manager (`container_crash` with exit code
and log tail, `container_oom` with the count, `needs_login`, `logged_in`, `needs_update`), a
log line (`crash`, `oom_kill`) and dashboard events (`agent_axes`;
the derived `agent_state` follows from them); the first tick only seeds —
nothing fires for states that already held when the daemon started.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hyperhive import safefs
from hyperhive.core.feature import BaseFeature
from hyperhive.core.logs import read_logs

if TYPE_CHECKING:
    from hyperhive.core.lifecycle import Lifecycle

logger = logging.getLogger(__name__)


@dataclass
class Axes:
    running: bool
    failed: bool
    logged_in: bool
    up_to_date: bool
    oom_kills: int = 0


class CrashWatch(BaseFeature):
    """Watches the agents the lifecycle runs; contributes `failed`, `needs_login` and
    `needs_update` to their status rows."""

    name = "crash_watch"
    after: tuple[str, ...] = ("lifecycle",)

    def __init__(self, lifecycle: Lifecycle, interval: float = 2.0) -> None:
        self.lc = lifecycle
        self.interval = interval
        self._axes: dict[str, Axes] = {}
        self._seeded = False
        self._kick = asyncio.Event()

    async def after_start(self) -> None:
        self.hive.tasks.spawn("crash-watch", self._loop, restart=True)

    async def status_fields(self, agent: str) -> dict[str, Any]:
        rec = self.hive.registry.get(agent)
        if rec is None or rec.runtime == "external":
            return {}
        return self.flags(agent)

    def poke(self) -> None:
        """Check now (tests and actions call this instead of waiting for the tick)."""
        self._kick.set()

    def flags(self, name: str) -> dict[str, Any]:
        ax = self._axes.get(name)
        if ax is None:
            return {}
        out: dict[str, Any] = {
            "failed": ax.failed,
            "needs_login": not ax.logged_in,
            "needs_update": ax.running and not ax.up_to_date,
        }
        if ax.oom_kills:
            out["oom_kills"] = ax.oom_kills
        return out

    def logged_in(self, name: str) -> bool:
        ep = self.hive.config.model_endpoint
        if ep.base_url or ep.api_key_file:
            return True
        # the agent writes its state: a link there is not a credential (nor followed)
        return safefs.is_regular(self.hive.paths.state_dir(name), ".claude/.credentials.json")

    async def _loop(self) -> None:
        while True:
            await self.tick()
            try:
                await asyncio.wait_for(self._kick.wait(), self.interval)
            except TimeoutError:
                pass
            self._kick.clear()

    async def tick(self) -> None:
        seeding = not self._seeded
        self._seeded = True
        manager = self.hive.registry.manager()
        for rec in self.hive.registry.all():
            if rec.runtime == "external":
                continue
            name = rec.name
            if name in self.lc.transients:
                continue  # mid-action: judge when it settles
            st = await self.lc.status(name)
            prev = self._axes.get(name)
            expected = name in self.lc.expected_exit
            failed = (not st.running) and not expected and st.exit_code is not None
            if prev is not None and prev.failed and not st.running:
                failed = True  # stays failed until it runs again
            rev = self.lc.config_rev(name)
            ax = Axes(
                running=st.running,
                failed=failed,
                logged_in=self.logged_in(name),
                up_to_date=(not st.running) or self.lc.built_rev.get(name, rev) == rev,
                oom_kills=st.oom_kills,
            )
            self._axes[name] = ax
            if prev == ax:
                continue
            self.hive.hub.publish("agent_axes", agent=name, **ax.__dict__)
            if seeding or manager is None:
                continue
            if prev is None:  # first seen after start-up (e.g. died before the first tick)
                prev = Axes(running=False, failed=False, logged_in=ax.logged_in, up_to_date=True)
            to = manager.name
            if ax.failed and not prev.failed:
                tail = read_logs(self.hive.paths.logs_dir(name), "harness", 20)
                logger.warning(
                    "%s crashed (exit %s)",
                    name,
                    st.exit_code,
                    extra={"action": "crash", "agent": name},
                )
                if name != to:
                    await self.hive.broker.system_event(
                        to,
                        "container_crash",
                        agent=name,
                        exit_code=st.exit_code,
                        log_tail="\n".join(tail),
                    )
            if ax.oom_kills > prev.oom_kills:
                logger.warning(
                    "%s: the kernel's OOM killer ended %d process(es) in its sandbox (%d this run)",
                    name,
                    ax.oom_kills - prev.oom_kills,
                    ax.oom_kills,
                    extra={"action": "oom_kill", "agent": name},
                )
                if name != to:
                    await self.hive.broker.system_event(
                        to,
                        "container_oom",
                        agent=name,
                        oom_kills=ax.oom_kills,
                        running=ax.running,
                    )
            if prev.logged_in and not ax.logged_in and name != to:
                await self.hive.broker.system_event(to, "needs_login", agent=name)
            if not prev.logged_in and ax.logged_in and name != to:
                await self.hive.broker.system_event(to, "logged_in", agent=name)
            if ax.running and not ax.up_to_date and (prev.up_to_date or not prev.running):
                await self.hive.broker.system_event(to, "needs_update", agent=name)
