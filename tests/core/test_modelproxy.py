"""The per-agent model socket: an unreachable endpoint is answered, not hung up on."""

from __future__ import annotations

import socket

import httpx
import pytest

from hyperhive.config import Defaults, HiveConfig, ModelEndpoint
from hyperhive.core.hive import Hive


def closed_port() -> int:
    """A loopback port with nothing listening (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def hive_config() -> HiveConfig:
    return HiveConfig(
        defaults=Defaults(runtime="external"),
        model_endpoint=ModelEndpoint(base_url=f"http://127.0.0.1:{closed_port()}/a/{{agent}}"),
    )


async def test_unreachable_endpoint_answers_502_naming_it(hive: Hive) -> None:
    await hive.spawn("alice")
    await hive.model_proxy.open("alice")
    path = hive.paths.sock_dir("alice") / "model.sock"
    endpoint = hive.config.model_endpoint.base_url.replace("{agent}", "alice")
    transport = httpx.AsyncHTTPTransport(uds=str(path))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        answer = await client.post("/a/alice/v1/messages", json={"model": "haiku", "messages": []})
    assert answer.status_code == 502
    error = answer.json()
    assert error["type"] == "error" and error["error"]["type"] == "api_error"
    assert endpoint in error["error"]["message"]
    assert "refused" in error["error"]["message"].lower()
