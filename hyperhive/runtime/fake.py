"""`FakeRuntime`: an in-memory runtime for fast core tests.

It records every call (`calls`), keeps the same invariants as the real backends (one live
instance per name, `Conflict` on a double start, `status` never raises, `adopt` finds what a
previous `FakeRuntime` sharing the same `world` left running) and lets a test end an agent with
`exit(name, code)`. Nothing is spawned.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field

from hyperhive.errors import Conflict, NotFound
from hyperhive.runtime.base import LaunchSpec, Runtime, RuntimeStatus

EXIT_TERM = 143
EXIT_KILLED = 137


@dataclass
class FakeAgent:
    spec: LaunchSpec
    pid: int
    started_at: float
    exit_code: int | None = None
    oom_kills: int = 0  # as the cgroup's counter would say
    done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def running(self) -> bool:
        return self.exit_code is None


@dataclass
class FakeWorld:
    """What 'outlives the daemon': share one between two FakeRuntimes to test adoption."""

    agents: dict[str, FakeAgent] = field(default_factory=dict)
    pids: itertools.count[int] = field(default_factory=lambda: itertools.count(1000))


class FakeRuntime(Runtime):
    name = "fake"
    isolated = False

    def __init__(self, world: FakeWorld | None = None, *, ignore_sigterm: bool = False) -> None:
        self.world = world or FakeWorld()
        self.calls: list[tuple[str, str]] = []  # (method, agent name)
        self.ignore_sigterm = ignore_sigterm  # stop() then falls back to kill (exit 137)
        self.closed = False

    def _status(self, name: str) -> RuntimeStatus:
        a = self.world.agents.get(name)
        if a is None:
            return RuntimeStatus(name=name, running=False)
        return RuntimeStatus(
            name=name,
            running=a.running,
            pid=a.pid if a.running else None,
            exit_code=a.exit_code,
            started_at=a.started_at,
            config_rev=a.spec.config_rev,
            oom_kills=a.oom_kills,
        )

    def exit(self, name: str, code: int = 0) -> None:
        """Make the agent exit with `code` (as if its process ended)."""
        a = self.world.agents.get(name)
        if a is None or not a.running:
            raise NotFound(f"fake agent {name!r} is not running")
        a.exit_code = code
        a.done.set()

    def spec(self, name: str) -> LaunchSpec:
        a = self.world.agents.get(name)
        if a is None:
            raise NotFound(f"fake agent {name!r} was never started")
        return a.spec

    async def start(self, spec: LaunchSpec) -> RuntimeStatus:
        self.calls.append(("start", spec.name))
        old = self.world.agents.get(spec.name)
        if old is not None and old.running:
            raise Conflict(f"agent {spec.name!r} is already running (pid {old.pid})")
        self.world.agents[spec.name] = FakeAgent(spec, next(self.world.pids), time.time())
        return self._status(spec.name)

    async def stop(self, name: str, timeout: float = 30.0) -> RuntimeStatus:
        self.calls.append(("stop", name))
        a = self.world.agents.get(name)
        if a is not None and a.running:
            if self.ignore_sigterm:
                return await self.kill(name)
            self.exit(name, EXIT_TERM)
        return self._status(name)

    async def kill(self, name: str) -> RuntimeStatus:
        self.calls.append(("kill", name))
        a = self.world.agents.get(name)
        if a is not None and a.running:
            self.exit(name, EXIT_KILLED)
        return self._status(name)

    async def status(self, name: str) -> RuntimeStatus:
        return self._status(name)

    async def adopt(self, spec: LaunchSpec) -> RuntimeStatus:
        self.calls.append(("adopt", spec.name))
        return self._status(spec.name)

    async def wait(self, name: str) -> int:
        a = self.world.agents.get(name)
        if a is None:
            raise NotFound(f"fake agent {name!r} was never started")
        await a.done.wait()
        assert a.exit_code is not None
        return a.exit_code

    async def exec_argv(self, spec: LaunchSpec, argv: list[str]) -> list[str]:
        self.calls.append(("exec_argv", spec.name))
        return list(argv)

    async def aclose(self) -> None:
        self.closed = True
