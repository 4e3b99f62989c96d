"""Each agent's page on its sticky port (`hyperhive/web/agentports.py`): opened and closed
with the agent, in status rows, behind the loopback/CSRF guard, same port after a restart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from hyperhive.assembly import build_features
from hyperhive.config import HiveConfig
from hyperhive.core.hive import Hive
from hyperhive.core.status import status_row
from hyperhive.harness.web import build_app
from hyperhive.paths import HivePaths
from hyperhive.web.agentports import AgentPorts, AgentPortServer
from tests.support.waiting import eventually
from tests.support.webagent import (
    QUIET,
    FakeHarness,
    agent_ports,
    free_agent_port,
    quiet_hive,
    serve_uds,
)


def ports_hive(paths: HivePaths, config: HiveConfig) -> Hive:
    return quiet_hive(paths, config, "agent_ports")


@pytest.fixture
async def ported(paths: HivePaths, hive_config: HiveConfig) -> AsyncIterator[tuple[Hive, int]]:
    """A core with the AgentPorts feature and an agent `alice` whose port file names a port
    free right now (its hash port may be held by another test run on this machine)."""
    port = free_agent_port()
    paths.port_file("alice").parent.mkdir(parents=True, exist_ok=True)
    paths.port_file("alice").write_text(f"{port}\n")
    async with ports_hive(paths, hive_config) as hive:
        await hive.spawn("alice")
        await eventually(lambda: agent_ports(hive).port("alice") == port, what="alice's port")
        yield hive, port


async def test_port_opens_with_the_agent_and_shows_in_status(ported: tuple[Hive, int]) -> None:
    hive, port = ported
    assert await agent_ports(hive).status_fields("alice") == {"web_port": port}
    row = await status_row(hive, "alice")
    assert getattr(row, "web_port", port) == port  # the wire row grows the field separately
    assert row.url is None  # no public domain configured
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        page = await http.get("/")
        assert page.status_code == 200 and '<h1 id="agent-name">alice</h1>' in page.text
        assert 'src="static/agent.js?v=' in page.text
        assert (await http.get("/static/agent.js")).status_code == 200
        down = await http.get("/api/state")
        assert down.status_code == 502 and down.json()["code"] == "unavailable"
    await hive.registry.remove("alice")
    await eventually(lambda: agent_ports(hive).port("alice") is None, what="the port to close")
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as http:
            await http.get(f"http://127.0.0.1:{port}/")


async def test_port_serves_the_api_and_sends_as_operator_with_csrf(
    ported: tuple[Hive, int], short_tmp: Path
) -> None:
    hive, port = ported
    state = short_tmp / "st"
    state.mkdir()
    async with FakeHarness(state, hive.paths.agent_sock("alice")) as fake:
        async with serve_uds(build_app(fake), hive.paths.web_sock("alice")):
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                assert (await http.get("/api/state")).json()["name"] == "alice"
                # no CSRF token yet: refused, in the one error shape
                refused = await http.post("/send", json={"body": "hi"})
                assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
                token = http.cookies[f"hh_csrf_{port}"]
                ok = await http.post(
                    "/send", json={"body": "hi from the port"}, headers={"X-CSRF-Token": token}
                )
                assert ok.json()["sender"] == "operator"
                rebound = await http.get("/", headers={"Host": "evil.example"})
                assert rebound.status_code == 403  # DNS rebinding: not a loopback Host
    rows = await hive.broker.recent("alice", 5)
    assert [(m.sender, m.body) for m in rows] == [("operator", "hi from the port")]


async def test_port_is_sticky_across_restarts(paths: HivePaths, hive_config: HiveConfig) -> None:
    name = "ported-agent"
    async with ports_hive(paths, hive_config) as hive:
        await hive.spawn(name)
        await eventually(lambda: name in agent_ports(hive).servers, timeout=30, what="the port")
        first = agent_ports(hive).port(name)
    assert first is not None
    assert paths.port_file(name).read_text().strip() == str(first)
    async with ports_hive(paths, hive_config) as hive:
        await eventually(lambda: name in agent_ports(hive).servers, timeout=30, what="the port")
        assert agent_ports(hive).port(name) == first
        async with httpx.AsyncClient() as http:
            page = await http.get(f"http://127.0.0.1:{first}/")
        assert f'<h1 id="agent-name">{name}</h1>' in page.text


def test_feature_is_in_the_default_hive() -> None:
    assert any(isinstance(f, AgentPorts) for f in build_features()[0])


class CountingPorts(AgentPorts):
    """AgentPorts that records every open it is asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.opens: list[str] = []

    async def open(self, name: str) -> AgentPortServer | None:
        self.opens.append(name)
        return await super().open(name)


async def test_each_port_is_opened_once_on_first_start(
    paths: HivePaths, hive_config: HiveConfig
) -> None:
    """The manager registered during the hive's first start used to be opened twice (its
    registration event and the start-up sweep): a port held elsewhere then cost two full
    rounds of bind retries."""
    ports = CountingPorts()
    features, lifecycle = build_features(without=QUIET - {"agent_ports"})
    features = [ports if f.name == "agent_ports" else f for f in features]
    async with Hive(paths, hive_config, features=features, launcher=lifecycle) as hive:
        await eventually(lambda: "manager" in ports.servers, timeout=30, what="the port")
        await asyncio.gather(*ports._tasks)
        assert ports.opens == ["manager"]
        await hive.spawn("alice")
        await eventually(lambda: "alice" in ports.servers, timeout=30, what="alice's port")
        assert ports.opens == ["manager", "alice"]


async def test_ports_close_together_on_shutdown(
    paths: HivePaths, hive_config: HiveConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stopping a core with many agents must not close their page servers one by one: every
    close starts before the first one ends."""
    names = [f"agent{i}" for i in range(8)]
    steps: list[tuple[str, str]] = []
    original = AgentPortServer.aclose

    async def traced(self: AgentPortServer) -> None:
        steps.append(("start", self.name))
        await original(self)
        steps.append(("end", self.name))

    async with ports_hive(paths, hive_config) as hive:
        for name in names:
            await hive.spawn(name)
        await eventually(
            lambda: set(names) <= set(agent_ports(hive).servers), timeout=60, what="every port"
        )
        monkeypatch.setattr(AgentPortServer, "aclose", traced)
    ends = [i for i, (kind, _) in enumerate(steps) if kind == "end"]
    starts = [i for i, (kind, _) in enumerate(steps) if kind == "start"]
    assert len(starts) == len(names) + 1  # the manager too
    assert max(starts) < min(ends), steps


async def test_port_needs_the_operator_token_when_one_is_configured(
    paths: HivePaths, hive_config: HiveConfig, short_tmp: Path
) -> None:
    """Issue #12: the page port answered `/send` (as operator) and `/api/state` (the inbox)
    without the dashboard's token. Same rules on every listener."""
    token = "t0ken-" + "x" * 20
    token_file = short_tmp / "token"
    token_file.write_text(token + "\n")
    config = hive_config.model_copy(
        update={
            "dashboard": hive_config.dashboard.model_copy(update={"token_file": str(token_file)})
        }
    )
    port = free_agent_port()
    paths.port_file("alice").parent.mkdir(parents=True, exist_ok=True)
    paths.port_file("alice").write_text(f"{port}\n")
    async with ports_hive(paths, config) as hive:
        await hive.spawn("alice")
        await eventually(lambda: agent_ports(hive).port("alice") == port, what="alice's port")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            state = await http.get("/api/state")
            assert state.status_code == 401 and state.json()["code"] == "unauthorized"
            sent = await http.post("/send", json={"body": "hi"})
            assert sent.status_code == 401 and sent.json()["code"] == "unauthorized"
            assert (await http.post("/api/cancel")).status_code == 401
            wrong = await http.get("/api/state", headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401
            bearer = {"Authorization": f"Bearer {token}"}
            ok = await http.post("/send", json={"body": "with the token"}, headers=bearer)
            assert ok.status_code == 200 and ok.json()["sender"] == "operator"
        assert [m.body for m in await hive.broker.recent("alice", 5)] == ["with the token"]
