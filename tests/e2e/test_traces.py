"""Traces across agents: two in-process harnesses running the real `claude` CLI against
`hive sim`, the SDK's in-memory exporter as the collector. The operator's message starts the
trace, alice's turn is its child, the send tool and the model requests are children of that
turn, and bob's turn — woken by what alice sent — is a child of alice's turn."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from hyperhive import tracing
from hyperhive.core.hive import Hive
from hyperhive.harness.loop import Harness, HarnessOptions
from hyperhive.sim import Scenario, SimServer
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    exp = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exp))
    tracing.use_provider(provider)
    try:
        yield exp
    finally:
        tracing.use_provider(None)
        provider.shutdown()


SCENARIO = {
    "rules": [
        {
            "id": "a1",
            "agent": "alice",
            "when_user_contains": "from operator",
            "reply": [
                {
                    "type": "tool_use",
                    "name": "mcp__hyperhive__send",
                    "input": {"to": "bob", "body": "hello bob"},
                }
            ],
        },
        {
            "id": "a2",
            "agent": "alice",
            "when_tool_result_for": "mcp__hyperhive__send",
            "text": "sent it",
        },
        {"id": "b1", "agent": "bob", "when_user_contains": "from alice", "text": "hi alice"},
    ]
}


def one(spans: list[ReadableSpan], name: str, **attrs: Any) -> ReadableSpan:
    found = [
        s
        for s in spans
        if s.name == name and all((s.attributes or {}).get(k) == v for k, v in attrs.items())
    ]
    assert len(found) == 1, [(s.name, dict(s.attributes or {})) for s in spans]
    return found[0]


def parent_of(s: ReadableSpan) -> int | None:
    return s.parent.span_id if s.parent is not None else None


async def test_one_trace_from_the_operator_through_two_agents(
    hive: Hive, short_tmp: Path, exporter: InMemorySpanExporter
) -> None:
    await hive.spawn("alice")
    await hive.spawn("bob")
    async with SimServer(Scenario.model_validate(SCENARIO)) as sim:
        harnesses = []
        for name in ("alice", "bob"):
            state = short_tmp / f"{name}-state"
            state.mkdir()
            opts = HarnessOptions(
                socket=hive.paths.agent_sock(name),
                state_dir=state,
                base_url=sim.url_for(name),
                api_key="sim",
                model_retries=0,
            )
            harnesses.append(Harness(opts))
        tasks = [asyncio.create_task(h.run(), name=f"harness-{i}") for i, h in enumerate(harnesses)]
        try:
            [sent] = await hive.broker.send("operator", "alice", "please greet bob")
            assert sent.trace_parent is not None
            await eventually(
                lambda: any(
                    s.name == "turn" and (s.attributes or {}).get("hyperhive.agent") == "bob"
                    for s in exporter.get_finished_spans()
                ),
                120,
                "bob's turn span",
            )
        finally:
            for h in harnesses:
                h.stop()
            await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 60)
    spans = list(exporter.get_finished_spans())
    op = one(spans, "operator message")
    alice = one(spans, "turn", **{"hyperhive.agent": "alice"})
    bob = one(spans, "turn", **{"hyperhive.agent": "bob"})
    send = one(spans, "tool mcp__hyperhive__send")
    trace_id = op.context.trace_id
    assert {s.context.trace_id for s in (alice, bob, send)} == {trace_id}
    assert parent_of(alice) == op.context.span_id
    assert (alice.attributes or {})["hyperhive.wake_message_id"] == sent.id
    assert parent_of(send) == alice.context.span_id
    assert parent_of(bob) == alice.context.span_id  # the chain crosses to the second agent
    assert (bob.attributes or {})["hyperhive.wake_from"] == "alice"
    models = [
        s for s in spans if s.name == "model request" and parent_of(s) == alice.context.span_id
    ]
    assert len(models) >= 2  # the tool_use answer and the final text
    assert (alice.attributes or {})["hyperhive.result"] == "ok"
