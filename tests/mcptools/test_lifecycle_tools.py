"""The manager's lifecycle tools over the real MCP server (stdio), on the fake runtime."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from hyperhive.config import Defaults, HiveConfig
from hyperhive.core.hive import Hive
from hyperhive.paths import HivePaths
from hyperhive.runtime.fake import FakeWorld
from tests.support.lifecycle import fake_hive
from tests.support.mcp import mcp_session


@pytest.fixture
async def fhive(paths: HivePaths) -> AsyncIterator[tuple[Hive, FakeWorld]]:
    world = FakeWorld()
    cfg = HiveConfig(defaults=Defaults(runtime="fake"))
    async with fake_hive(paths, cfg, world) as h:
        yield h, world


def text(result: object) -> str:
    return "".join(getattr(c, "text", "") for c in getattr(result, "content", []))


async def test_manager_tools(fhive: tuple[Hive, FakeWorld]) -> None:
    hive, world = fhive
    await hive.spawn("alice")
    async with mcp_session(hive, "manager") as s:
        names = {t.name for t in (await s.list_tools()).tools}
        assert {"start", "restart", "kill", "update"} <= names
        r = await s.call_tool("kill", {"name": "alice"})
        assert not r.is_error and "alice killed" in text(r)
        assert not world.agents["alice"].running
        r = await s.call_tool("start", {"name": "alice"})
        assert not r.is_error and world.agents["alice"].running
        r = await s.call_tool("restart", {"name": "manager"})
        assert r.is_error and "yourself" in text(r)
    async with mcp_session(hive, "alice") as s:
        names = {t.name for t in (await s.list_tools()).tools}
        assert not names & {"start", "restart", "kill", "update", "request_spawn"}
