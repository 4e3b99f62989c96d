"""The runtime interface: start, stop, kill, adopt and inspect one agent's sandbox.

Invariants every backend keeps:
- At most one live instance per agent name; `start` on a running agent is a `Conflict`.
- Output goes to files under `spec.log_dir` (`harness.log`), and the exit status is written to
  `spec.log_dir / "exit.json"` as `{"exit_code": N}` by something that outlives the daemon, so a
  restarted daemon can `adopt` a running agent and later read how it ended.
- `status` never raises for an unknown agent: it reports `running=False`.
- Every method is safe to call concurrently for different agents.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

NetworkMode = Literal["none", "egress", "host"]


@dataclass(frozen=True)
class Limits:
    """Per-agent resource limits; 0 means unlimited."""

    memory_mb: int = 0
    pids: int = 0
    cpu_percent: int = 0  # 100 = one full core


@dataclass(frozen=True)
class LaunchSpec:
    """Everything a runtime needs to start one agent. Paths are host paths."""

    name: str
    argv: list[str]  # the command to run inside (the harness), with in-sandbox paths
    state_dir: Path  # -> /state (writable, cwd, HOME)
    sock_dir: Path  # -> /run/hive (the agent's socket directory)
    shared_dir: Path  # -> /shared (common to all agents)
    log_dir: Path  # harness.log, exit.json, runtime.json live here (host side only)
    env: dict[str, str] = field(default_factory=dict)
    uid: int | None = None  # run as this numeric uid (set when the daemon runs as root)
    network: NetworkMode = "none"
    limits: Limits = field(default_factory=Limits)
    ro_binds: list[tuple[Path, Path]] = field(default_factory=list)  # (host, inside)
    rw_binds: list[tuple[Path, Path]] = field(default_factory=list)  # (host, inside)
    config_rev: str = ""  # which config revision this sandbox is built from
    git_name: str = ""  # git identity inside (defaults to the agent name)
    allow_userns: bool = False  # nested user namespaces inside (denied by seccomp otherwise)


@dataclass(frozen=True)
class RuntimeStatus:
    name: str
    running: bool
    pid: int | None = None  # host pid of the agent's main process (the harness)
    exit_code: int | None = None  # last exit status when not running
    started_at: float | None = None
    config_rev: str = ""
    oom_kills: int = 0  # processes the kernel's OOM killer ended in the agent's cgroup this run


class Runtime(abc.ABC):
    """One sandbox backend. Async context manager; `aclose` is idempotent and leaves running
    agents running (they survive the daemon) unless `stop_all` was called."""

    name: str = "abstract"
    isolated: bool = True

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release daemon-side resources. Idempotent."""

    @abc.abstractmethod
    async def start(self, spec: LaunchSpec) -> RuntimeStatus:
        """Start the agent; return once its process exists."""

    @abc.abstractmethod
    async def stop(self, name: str, timeout: float = 30.0) -> RuntimeStatus:
        """SIGTERM the agent's main process, wait up to `timeout`, then kill."""

    @abc.abstractmethod
    async def kill(self, name: str) -> RuntimeStatus:
        """Kill every process of the agent at once."""

    @abc.abstractmethod
    async def status(self, name: str) -> RuntimeStatus:
        """Current state; reads exit.json when the agent is gone."""

    @abc.abstractmethod
    async def adopt(self, spec: LaunchSpec) -> RuntimeStatus:
        """After a daemon restart: find the agent's still-running sandbox (if any) instead of
        starting a duplicate. Returns its status (running or not)."""

    @abc.abstractmethod
    async def wait(self, name: str) -> int:
        """Wait until the agent exits; return its exit code."""

    def resource_usage(self, name: str) -> dict[str, float]:
        """What the agent's sandbox uses now (`memory_bytes`, `cpu_seconds`; for metrics);
        empty where the backend cannot tell."""
        return {}

    async def exec_argv(self, spec: LaunchSpec, argv: list[str]) -> list[str]:
        """The host command that runs `argv` inside the agent's sandbox as the agent's uid,
        cwd /state (for `hive shell` / `hive login`)."""
        from hyperhive.errors import NotSupported

        raise NotSupported(f"runtime {self.name!r} has no shell")
