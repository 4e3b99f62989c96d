"""Per-agent applied config, cached by file mtime, and the send policy enforced in the core.

Invariant: the core refuses a send the sender's applied `allowed_recipients` forbids
(`hyperhive.sendpolicy`), whether or not the harness checked first.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from hyperhive.agentconfig import AgentConfig, load_agent_config
from hyperhive.errors import ConfigError, Forbidden
from hyperhive.sendpolicy import may_send, refusal

if TYPE_CHECKING:
    from hyperhive.core.hive import Hive


_DEFAULT = AgentConfig()


class AgentConfigs:
    """Reads `applied/<name>/agent.toml`, re-reading only when the file changed. The file is
    stat'ed at most once per `recheck` seconds per agent (sends are a hot path); the core calls
    `invalidate` itself whenever it applies a config, so its own changes are seen at once."""

    def __init__(self, hive: Hive, recheck: float = 1.0) -> None:
        self.hive = hive
        self.recheck = recheck
        self._cache: dict[str, tuple[float, AgentConfig]] = {}
        self._checked: dict[str, float] = {}

    def invalidate(self, name: str) -> None:
        self._checked.pop(name, None)
        self._cache.pop(name, None)

    def path(self, name: str) -> Path:
        return self.hive.paths.applied_dir(name) / "agent.toml"

    def get(self, name: str) -> AgentConfig:
        now = time.monotonic()
        cached = self._cache.get(name)
        if cached is not None and now - self._checked.get(name, 0.0) < self.recheck:
            return cached[1]
        self._checked[name] = now
        path = self.path(name)
        try:
            mtime = path.stat().st_mtime
        except FileNotFoundError:
            self._cache[name] = (0.0, _DEFAULT)
            return _DEFAULT
        if cached is not None and cached[0] == mtime:
            return cached[1]
        cfg = load_agent_config(path)
        self._cache[name] = (mtime, cfg)
        return cfg

    def model(self, name: str) -> str:
        """The model `name` runs: its applied config's `model`, else the registry's, else the
        hive default (what `get_config` hands the harness at start)."""
        rec = self.hive.registry.get(name)
        return (
            self.get_or_default(name).model
            or (rec.model if rec is not None else None)
            or self.hive.config.defaults.model
        )

    def get_or_default(self, name: str) -> AgentConfig:
        """Like `get`, but a broken applied config counts as defaults (it was validated when
        applied; this only guards against hand edits)."""
        try:
            return self.get(name)
        except ConfigError:
            return AgentConfig()


def install_send_policy(hive: Hive) -> None:
    async def policy(sender: str, to: str) -> None:
        if hive.registry.get(sender) is None:
            return
        manager = hive.registry.manager()
        manager_name = manager.name if manager else hive.config.manager.name
        allowed = hive.agent_configs.get_or_default(sender).allowed_recipients
        if may_send(to, allowed, manager_name):
            return
        raise Forbidden(refusal(sender, to, allowed, manager_name))

    hive.broker.policy = policy
