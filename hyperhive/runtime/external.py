"""`ExternalRuntime`: hyperhive launches nothing; the user starts the agent's harness themselves
and it connects to the agent's socket. Start/stop/kill are no-ops that succeed; status always
reports `running=False` with no pid (liveness is the socket connection, which the core sees)."""

from __future__ import annotations

from hyperhive.errors import NotFound
from hyperhive.runtime.base import LaunchSpec, Runtime, RuntimeStatus


class ExternalRuntime(Runtime):
    name = "external"
    isolated = False

    def __init__(self) -> None:
        self._revs: dict[str, str] = {}

    def _status(self, name: str) -> RuntimeStatus:
        return RuntimeStatus(name=name, running=False, config_rev=self._revs.get(name, ""))

    async def start(self, spec: LaunchSpec) -> RuntimeStatus:
        self._revs[spec.name] = spec.config_rev
        return self._status(spec.name)

    async def stop(self, name: str, timeout: float = 30.0) -> RuntimeStatus:
        return self._status(name)

    async def kill(self, name: str) -> RuntimeStatus:
        return self._status(name)

    async def status(self, name: str) -> RuntimeStatus:
        return self._status(name)

    async def adopt(self, spec: LaunchSpec) -> RuntimeStatus:
        self._revs[spec.name] = spec.config_rev
        return self._status(spec.name)

    async def wait(self, name: str) -> int:
        raise NotFound(f"agent {name!r} runs externally: there is no process to wait for")
