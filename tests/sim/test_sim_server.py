"""The HTTP server: hyperhive/sim/server.py, checked with the official `anthropic` SDK."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import anthropic
import httpx
import pytest

from hyperhive.sim import Scenario, SimServer

USAGE = {
    "input_tokens": 1234,
    "output_tokens": 56,
    "cache_read_input_tokens": 78,
    "cache_creation_input_tokens": 9,
}

SCENARIO = Scenario.model_validate(
    {
        "default": {"text": "default for {agent}"},
        "rules": [
            {
                "id": "full",
                "when_user_contains": "everything",
                "usage": USAGE,
                "reply": [
                    {"type": "thinking", "thinking": "I should call a tool for {agent}."},
                    {"type": "text", "text": "Sending it now, {agent}."},
                    {
                        "type": "tool_use",
                        "name": "mcp__hyperhive__send",
                        "input": {"to": "manager", "body": "hi", "tags": ["a", "b"], "n": 3},
                    },
                ],
            },
            {"id": "sent", "when_tool_result_for": "mcp__hyperhive__send", "text": "sent"},
            {
                "id": "too-long",
                "when_user_contains": "huge",
                "error": {
                    "status": 400,
                    "message": "prompt is too long: 250000 tokens > 200000 maximum",
                },
            },
            {
                "id": "busy",
                "when_user_contains": "busy",
                "error": {"status": 529, "message": "Overloaded"},
            },
            {
                "id": "slow",
                "when_user_contains": "slow",
                "chunk_delay_ms": 60_000,
                "text": "one two three four",
            },
            {"id": "once", "when_user_contains": "once", "times": 1, "text": "first time"},
            {"id": "session", "session_id": "sess-*", "text": "by session"},
        ],
    }
)


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    async with SimServer(SCENARIO) as server:
        yield server


Client = Callable[..., anthropic.AsyncAnthropic]


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    """`client(sim, agent="alice")`: an Anthropic SDK client for `agent`, closed after the test
    (an unclosed one leaves its sockets to the garbage collector: a ResourceWarning)."""
    made: list[anthropic.AsyncAnthropic] = []

    def make(sim: SimServer, agent: str = "alice") -> anthropic.AsyncAnthropic:
        c = anthropic.AsyncAnthropic(base_url=sim.url_for(agent), api_key="x", max_retries=0)
        made.append(c)
        return c

    yield make
    for c in made:
        await c.close()


def ask(prompt: str) -> list[Any]:
    return [{"role": "user", "content": prompt}]


async def test_streaming_reply_parses_exactly(sim: SimServer, client: Client) -> None:
    events: list[str] = []
    async with client(sim).messages.stream(
        model="claude-haiku-5-5", max_tokens=100, messages=ask("do everything")
    ) as stream:
        async for event in stream:
            events.append(event.type)
        message = await stream.get_final_message()
    thinking, text, tool = message.content
    assert thinking.type == "thinking" and thinking.thinking == "I should call a tool for alice."
    assert thinking.signature
    assert text.type == "text" and text.text == "Sending it now, alice."
    assert tool.type == "tool_use" and tool.name == "mcp__hyperhive__send"
    assert tool.input == {"to": "manager", "body": "hi", "tags": ["a", "b"], "n": 3}
    assert message.stop_reason == "tool_use"
    assert message.model == "claude-haiku-5-5"
    assert message.usage.model_dump(include=set(USAGE)) == USAGE
    assert events.count("text") >= 2  # streamed in several deltas
    assert "input_json" in events and "thinking" in events and "signature" in events
    logged = sim.requests[0]
    assert (logged.agent, logged.rule_id, logged.stream, logged.outcome) == (
        "alice",
        "full",
        True,
        "complete",
    )
    assert logged.tool_uses == ["mcp__hyperhive__send"]
    assert logged.reply_text == "Sending it now, alice."


async def test_non_streaming_reply_parses_exactly(sim: SimServer, client: Client) -> None:
    message = await client(sim, "bob").messages.create(
        model="m", max_tokens=100, messages=ask("do everything")
    )
    assert [block.type for block in message.content] == ["thinking", "text", "tool_use"]
    assert message.usage.model_dump(include=set(USAGE)) == USAGE
    assert sim.requests[0].stream is False
    assert sim.requests[0].agent == "bob"


async def test_tool_result_continues_the_turn(sim: SimServer, client: Client) -> None:
    c = client(sim)
    first = await c.messages.create(model="m", max_tokens=100, messages=ask("do everything"))
    tool = first.content[2]
    assert tool.type == "tool_use"
    result = {"type": "tool_result", "tool_use_id": tool.id, "content": "delivered"}
    messages = [*ask("do everything"), {"role": "assistant", "content": first.content}]
    messages.append({"role": "user", "content": [result]})
    second = await c.messages.create(model="m", max_tokens=100, messages=messages)
    assert second.content[0].type == "text" and second.content[0].text == "sent"
    assert second.stop_reason == "end_turn"
    logged = sim.requests[1]
    assert (logged.rule_id, logged.tool_result_for, logged.latest_user_text) == (
        "sent",
        "mcp__hyperhive__send",
        "",
    )


async def test_error_rules_raise_the_sdk_errors(sim: SimServer, client: Client) -> None:
    with pytest.raises(anthropic.BadRequestError) as info:
        await client(sim).messages.create(model="m", max_tokens=10, messages=ask("a huge prompt"))
    assert info.value.status_code == 400
    assert "prompt is too long: 250000 tokens > 200000 maximum" in info.value.message
    assert isinstance(info.value.body, dict)
    assert info.value.body["error"]["type"] == "invalid_request_error"
    with pytest.raises(anthropic.OverloadedError):
        async with client(sim).messages.stream(model="m", max_tokens=10, messages=ask("busy")) as s:
            await s.get_final_message()
    assert [r.status for r in sim.requests] == [400, 529]


async def test_agent_from_header_and_session_matching(sim: SimServer) -> None:
    async with httpx.AsyncClient(base_url=sim.base_url) as http:
        body = {"model": "m", "max_tokens": 5, "messages": ask("hi")}
        r = await http.post("/v1/messages?beta=true", json=body, headers={"x-hive-agent": "carol"})
        assert r.json()["content"][0]["text"] == "default for carol"
        r = await http.post("/a/dave/v1/messages", json=body, headers={"x-hive-agent": "carol"})
        assert r.json()["content"][0]["text"] == "default for dave"  # the path wins
        headers = {"x-claude-code-session-id": "sess-42"}
        r = await http.post("/v1/messages", json=body, headers=headers)
        assert r.json()["content"][0]["text"] == "by session"
    assert [(x.agent, x.session_id) for x in sim.requests] == [
        ("carol", None),
        ("dave", None),
        (None, "sess-42"),
    ]


async def test_probes_bad_requests_and_count_tokens(sim: SimServer) -> None:
    async with httpx.AsyncClient(base_url=sim.base_url) as http:
        assert (await http.head("/")).status_code == 200
        assert (await http.head("/a/alice/api/hello")).status_code == 200
        assert (await http.get("/")).json()["ok"] is True
        r = await http.post("/a/alice/v1/messages", content=b"{not json")
        assert r.status_code == 400
        assert r.json()["error"] == {
            "type": "invalid_request_error",
            "message": "request body is not valid JSON",
        }
        r = await http.post("/v1/messages", json={"model": "m"})
        assert r.status_code == 400 and "messages" in r.json()["error"]["message"]
        r = await http.post("/v1/other", json={})
        assert r.status_code in (404, 405) and r.json()["type"] == "error"
        r = await http.post(
            "/v1/messages/count_tokens", json={"model": "m", "messages": ask("x" * 400)}
        )
        assert r.json()["input_tokens"] > 100
    assert sim.requests == []  # only Messages requests are logged


async def test_times_holds_under_concurrency(sim: SimServer, client: Client) -> None:
    c = client(sim)
    replies = await asyncio.gather(
        *(c.messages.create(model="m", max_tokens=5, messages=ask("once")) for _ in range(5))
    )
    texts = sorted(r.content[0].text for r in replies if r.content[0].type == "text")
    assert texts == ["default for alice"] * 4 + ["first time"]
    assert sim.fired("once") == 1


async def test_wait_for_request(sim: SimServer, client: Client) -> None:
    c = client(sim, "erin")
    waiter = asyncio.create_task(sim.wait_for_request(lambda r: r.agent == "erin", timeout=10))
    await c.messages.create(model="m", max_tokens=5, messages=ask("hello"))
    found = await waiter
    assert (found.seq, found.agent, found.latest_user_text) == (0, "erin", "hello")
    # already-logged requests count, unless `after` skips them
    assert (await sim.wait_for_request(timeout=1)).seq == 0
    with pytest.raises(TimeoutError, match="no matching request"):
        await sim.wait_for_request(timeout=0.05, after=sim.seen)


async def test_set_scenario_swaps_and_resets_counts(sim: SimServer, client: Client) -> None:
    c = client(sim)
    await c.messages.create(model="m", max_tokens=5, messages=ask("once"))
    sim.set_scenario(Scenario.model_validate({"default": {"text": "new"}, "rules": SCENARIO.rules}))
    assert sim.fired("once") == 0
    again = await c.messages.create(model="m", max_tokens=5, messages=ask("once"))
    other = await c.messages.create(model="m", max_tokens=5, messages=ask("else"))
    assert [again.content[0].type, other.content[0].type] == ["text", "text"]
    assert again.content[0].text == "first time"  # type: ignore[union-attr]
    assert other.content[0].text == "new"  # type: ignore[union-attr]


async def read_until(lines: AsyncIterator[str], marker: str) -> None:
    async for line in lines:
        if marker in line:
            return
    raise AssertionError(f"stream ended before {marker!r}")


async def test_client_disconnect_is_recorded(sim: SimServer) -> None:
    body = {"model": "m", "max_tokens": 5, "stream": True, "messages": ask("slow please")}
    async with httpx.AsyncClient(base_url=sim.url_for("frank")) as http:
        async with http.stream("POST", "/v1/messages", json=body) as response:
            await read_until(response.aiter_lines(), "content_block_start")
    # the stream is paused for a minute before its next delta; hanging up ends it now
    entry = await sim.wait_for_request(lambda r: r.outcome != "pending", timeout=10)
    assert (entry.agent, entry.outcome) == ("frank", "disconnected")


async def test_close_cuts_slow_streams_short() -> None:
    sim = SimServer(SCENARIO)
    await sim.start()
    body = {"model": "m", "max_tokens": 5, "stream": True, "messages": ask("slow please")}
    received: list[str] = []
    async with httpx.AsyncClient(base_url=sim.base_url) as http:
        async with http.stream("POST", "/v1/messages", json=body) as response:
            lines = response.aiter_lines()
            await read_until(lines, "content_block_start")
            async with asyncio.timeout(5):  # the scripted pause is 60 s per delta
                await sim.close()
                received = [line async for line in lines]
    assert sim.requests[0].outcome == "aborted"
    assert not any("message_stop" in line for line in received)
    await sim.close()  # idempotent


async def test_start_is_idempotent_and_bind_errors_raise() -> None:
    async with SimServer(SCENARIO) as sim:
        port = sim.port
        await sim.start()
        assert sim.port == port
        with pytest.raises(OSError):
            await SimServer(SCENARIO, port=port).start()
    with pytest.raises(RuntimeError, match="closed"):
        await sim.start()


def test_urls_before_start() -> None:
    sim = SimServer(SCENARIO)
    with pytest.raises(RuntimeError, match="not started"):
        _ = sim.base_url


async def test_ipv6_url() -> None:
    sim = SimServer(SCENARIO, host="::1")
    try:
        await sim.start()
    except OSError:
        pytest.skip("no IPv6 loopback here")
    async with sim:
        assert sim.base_url.startswith("http://[::1]:")
        async with httpx.AsyncClient() as http:
            r = await http.post(
                f"{sim.url_for('x')}/v1/messages", json={"model": "m", "messages": ask("a")}
            )
            assert json.loads(r.content)["content"][0]["text"] == "default for x"


async def test_an_idle_connection_is_kept_open_as_long_as_the_cli_may_reuse_it(
    sim: SimServer,
) -> None:
    """Was: uvicorn's default closed an idle connection after 5 s. The CLI reuses its pooled
    connection after any idle time, so a warm agent's next turn (or a retry after a 2 s
    `retry-after`) raced that close and failed as a connection error, using up one of the
    CLI's retries (the warm rate-limit e2e test, flaky under load)."""
    from hyperhive.sim.server import KEEP_ALIVE_SECONDS

    async with httpx.AsyncClient(base_url=sim.url_for("alice")) as http:
        assert (await http.get("/api/hello")).status_code == 200
        loop = asyncio.get_running_loop()
        embedded = sim._embedded
        assert embedded is not None
        [conn] = embedded.server.server_state.connections
        timer = conn.timeout_keep_alive_task  # type: ignore[attr-defined]
        assert timer is not None  # idle now: its close is scheduled
        assert timer.when() - loop.time() > KEEP_ALIVE_SECONDS - 60
    assert KEEP_ALIVE_SECONDS >= 600  # past a warm agent's default idle life (warm_seconds)
