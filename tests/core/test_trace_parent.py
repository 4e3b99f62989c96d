"""The trace context on the agent socket: `send` takes a W3C traceparent (validated) and the
recipient's `recv` row carries it; untraced mail has none."""

from __future__ import annotations

from hyperhive.client.agent import NO_RETRY, AgentClient
from hyperhive.core.hive import Hive

TP = "00-0123456789abcdef0123456789abcdef-0123456789abcdef-01"


async def test_send_carries_the_trace_parent_to_the_recipient(hive: Hive) -> None:
    await hive.spawn("alice")
    await hive.spawn("bob")
    async with (
        AgentClient(hive.paths.agent_sock("alice"), retry=NO_RETRY) as alice,
        AgentClient(hive.paths.agent_sock("bob"), retry=NO_RETRY) as bob,
    ):
        await bob.call("recv", max=32)
        await alice.call("send", to="bob", body="traced", trace_parent=TP)
        await alice.call("send", to="bob", body="plain")
        bad = await alice.request_answer(
            {"cmd": "send", "to": "bob", "body": "x", "trace_parent": "00-nope"}
        )
        assert bad.body["ok"] is False and bad.body["code"] == "bad_request"
        rows = (await bob.call("recv", max=32))["messages"]
    assert [(m["body"], m.get("trace_parent")) for m in rows] == [("traced", TP), ("plain", None)]
