"""The send policy: a whitelist limits an agent's recipients, but never the manager or the
operator (an agent's harness reports a turn it could not handle to both)."""

from __future__ import annotations

import pytest

from hyperhive.core.hive import Hive
from hyperhive.errors import Forbidden
from hyperhive.names import OPERATOR


async def test_manager_and_operator_are_always_allowed(hive: Hive) -> None:
    for name in ("alice", "bob", "carol"):
        await hive.spawn(name)
    applied = hive.paths.applied_dir("alice") / "agent.toml"
    applied.parent.mkdir(parents=True, exist_ok=True)
    applied.write_text('allowed_recipients = ["bob"]\n')
    hive.agent_configs.invalidate("alice")
    with pytest.raises(Forbidden, match="may only message"):
        await hive.broker.send("alice", "carol", "psst")
    for to in ("bob", "manager", OPERATOR):
        assert await hive.broker.send("alice", to, "hello")
