"""The harness with the real `claude` CLI in real sandboxes, against scripted models."""

from __future__ import annotations

import json
import sqlite3
import sys
from typing import Any

import httpx
import pytest

from hyperhive.client.agent import NO_RETRY, AgentClient
from hyperhive.errors import Forbidden
from tests.e2e.conftest import BOTH_MODES, MakeHive, event_rows, turns
from tests.support.git import commit_all
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow

FROM_OP = "from operator"


def event_kinds(hive: Any, name: str) -> list[str]:
    conn = sqlite3.connect(hive.paths.state_dir(name) / "hyperhive-events.sqlite")
    try:
        return [k for (k,) in conn.execute("SELECT kind FROM events ORDER BY id")]
    finally:
        conn.close()


def send_tool(to: str, body: str) -> dict[str, Any]:
    return {"type": "tool_use", "name": "mcp__hyperhive__send", "input": {"to": to, "body": body}}


@BOTH_MODES
async def test_send_wakes_the_other_agent_and_stats_are_exact(
    make_hive: MakeHive, warm_seconds: float
) -> None:
    scenario = {
        "rules": [
            {
                "id": "a1",
                "agent": "alice",
                "when_user_contains": FROM_OP,
                "reply": [send_tool("bob", "hello bob")],
                "usage": {
                    "input_tokens": 111,
                    "output_tokens": 22,
                    "cache_read_input_tokens": 33,
                    "cache_creation_input_tokens": 44,
                },
            },
            {
                "id": "a2",
                "agent": "alice",
                "when_tool_result_for": "mcp__hyperhive__send",
                "text": "sent it",
                "usage": {
                    "input_tokens": 5,
                    "output_tokens": 6,
                    "cache_read_input_tokens": 7,
                    "cache_creation_input_tokens": 8,
                },
            },
            {
                "id": "b1",
                "agent": "bob",
                "when_user_contains": "from alice",
                "text": "got it, thanks",
            },
        ]
    }
    hive, sim = await make_hive(scenario)
    await hive.spawn("alice")
    await hive.spawn("bob")
    await hive.broker.send("operator", "alice", "please greet bob")
    await eventually(lambda: sim.fired("b1"), 90, "bob's turn on alice's message")
    await eventually(
        lambda: any(r["wake_from"] == "alice" for r in turns(hive, "bob")), 30, "bob's stats row"
    )
    # a warm bob may finish before alice's own turn (its follow-up request) has ended
    await eventually(
        lambda: any(r["wake_from"] == "operator" for r in turns(hive, "alice")),
        30,
        "alice's stats row",
    )
    row = next(r for r in turns(hive, "alice") if r["wake_from"] == "operator")
    assert row["result_kind"] == "ok"
    assert (row["input_tokens"], row["output_tokens"]) == (116, 28)
    assert (row["cache_read_tokens"], row["cache_creation_tokens"]) == (40, 52)
    assert row["tool_breakdown"] == {"mcp__hyperhive__send": 1} and row["tool_call_count"] == 1
    assert row["cost_usd"] is not None and row["cost_usd"] > 0
    # the same figures reached the core's budget meter (report_turn after the stats row)
    budgets: Any = hive.feature("budgets")

    async def alice_usage() -> bool:
        use = await budgets.store.sums("alice", "")
        return bool(use.tokens >= 116 + 28 and use.cost_usd >= row["cost_usd"])

    await eventually(alice_usage, 30, "alice's usage in the core")
    bob = next(r for r in turns(hive, "bob") if r["wake_from"] == "alice")
    assert bob["result_kind"] == "ok"
    # the message bob woke on is the one alice sent
    req = next(r for r in sim.requests if r.rule_id == "b1")
    assert "hello bob" in req.latest_user_text
    # the harnesses told the core what they were doing: one state, from one source
    assert ("in_turn", "running mcp__hyperhive__send") in states_of(hive, "alice")
    await eventually(
        lambda: [s for s, _ in states_of(hive, "bob")][-1:] == ["idle"], 30, "bob idle again"
    )

    # each harness acknowledged the message it woke on once its turn ended: delivered, no
    # lease left on their connections, and no second turn for it
    async def acknowledged(name: str) -> bool:
        rows = await hive.broker.recent(name, 10)
        return all(r.delivered_at is not None for r in rows) and (
            hive._sockets[name].leases_held() == 0
        )

    for name in ("alice", "bob"):
        await eventually(lambda n=name: acknowledged(n), 30, f"{name}'s wake-up acknowledged")
    assert [r["wake_from"] for r in turns(hive, "bob")].count("alice") == 1
    # warm: alice's kick turn and the operator's ran on one claude process; cold: one each
    starts = event_rows(hive.paths.state_dir("alice"), "claude_start")
    assert len(starts) == (1 if warm_seconds else 2)
    assert all(s["warm"] is bool(warm_seconds) for s in starts)


def states_of(hive: Any, name: str) -> list[tuple[str, str | None]]:
    return [
        (e.data["state"], e.data["note"])
        for e in hive.hub.history()
        if e.kind == "agent_state" and e.data["agent"] == name
    ]


async def test_denied_recipient_refused_by_tool_and_core(make_hive: MakeHive) -> None:
    scenario = {
        "rules": [
            {
                "id": "a1",
                "agent": "alice",
                "when_user_contains": FROM_OP,
                "reply": [send_tool("carol", "psst")],
            },
            {
                "id": "a2",
                "agent": "alice",
                "when_tool_result_for": "mcp__hyperhive__send",
                "text": "ok, via the manager then",
            },
        ]
    }
    hive, sim = await make_hive(scenario)
    for name in ("alice", "carol"):
        await hive.configs.seed(name)
    repo = hive.configs.repo("alice").path
    toml = (
        (repo / "agent.toml")
        .read_text()
        .replace("allowed_recipients = []", 'allowed_recipients = ["bob"]')
    )
    (repo / "agent.toml").write_text(toml)

    sha = commit_all(repo, "only bob")
    await hive.configs.apply("alice", sha)
    await hive.spawn("alice")
    await hive.spawn("carol")
    await hive.broker.send("operator", "alice", "tell carol a secret")
    await eventually(lambda: sim.fired("a2"), 90, "alice's refused send")
    refused = next(r for r in sim.requests if r.rule_id == "a2")
    text = "\n".join(t.text for t in refused.tool_results)
    assert "refused" in text and "manager" in text
    assert all(m.sender != "alice" for m in await hive.broker.recent("carol", 50))
    # and the core refuses too, whatever the harness does
    async with AgentClient(hive.paths.agent_sock("alice"), retry=NO_RETRY) as alice:
        with pytest.raises(Forbidden, match="route"):
            await alice.call("send", to="carol", body="bypassing the tool")
        await alice.call(
            "send", to="bob" if hive.registry.get("bob") else "manager", body="allowed"
        )


@BOTH_MODES
async def test_prompt_too_long_compacts_and_retries_once(
    make_hive: MakeHive, warm_seconds: float
) -> None:
    """The CLI auto-compacts once by itself; when the prompt is STILL too long it gives up with
    a prompt_too_long result, and the harness then runs /compact and retries the turn once."""
    scenario = {
        "rules": [
            {
                "id": "boom",
                "agent": "alice",
                "when_user_contains": FROM_OP,
                "times": 2,
                "error": {
                    "status": 400,
                    "message": "prompt is too long: 250000 tokens > 200000 maximum",
                },
            },
            {
                "id": "fine",
                "agent": "alice",
                "when_user_contains": FROM_OP,
                "text": "recovered after compacting",
            },
        ]
    }
    hive, sim = await make_hive(scenario)
    await hive.spawn("alice")
    await hive.broker.send("operator", "alice", "a huge task")
    await eventually(lambda: sim.fired("fine"), 120, "the retried turn")
    await eventually(
        lambda: len([r for r in turns(hive, "alice") if r["wake_from"] == "operator"]) == 2,
        30,
        "two rows",
    )
    kinds = [r["result_kind"] for r in turns(hive, "alice") if r["wake_from"] == "operator"]
    assert kinds == ["prompt_too_long", "ok"]
    assert sim.fired("boom") == 2 and sim.fired("fine") == 1
    # the harness ran /compact between the failed attempt and the retry
    kinds_seen = [
        k for k in event_kinds(hive, "alice") if k in ("turn_end", "compact_start", "compact_end")
    ]
    assert kinds_seen[-4:] == ["turn_end", "compact_start", "compact_end", "turn_end"]


@BOTH_MODES
async def test_cancel_records_a_cancelled_turn(make_hive: MakeHive, warm_seconds: float) -> None:
    scenario = {
        "rules": [
            {
                "id": "slow",
                "agent": "alice",
                "when_user_contains": FROM_OP,
                "chunk_delay_ms": 300,
                "text": " ".join(f"word{i}" for i in range(200)),
            },
        ]
    }
    hive, sim = await make_hive(scenario)
    await hive.spawn("alice")
    await hive.broker.send("operator", "alice", "write a long essay")
    await eventually(lambda: sim.fired("slow"), 90, "the slow turn to start")
    transport = httpx.AsyncHTTPTransport(uds=str(hive.paths.web_sock("alice")))
    async with httpx.AsyncClient(transport=transport, base_url="http://alice") as web:
        answer = (await web.post("/api/cancel")).json()
    assert answer["ok"] is True and answer["cancelled"] is True
    await eventually(
        lambda: any(r["wake_from"] == "operator" for r in turns(hive, "alice")), 30, "the stats row"
    )
    row = next(r for r in turns(hive, "alice") if r["wake_from"] == "operator")
    assert row["result_kind"] == "cancelled"
    await eventually(
        lambda: next(r for r in sim.requests if r.rule_id == "slow").outcome == "disconnected",
        10,
        "the stream to be cut",
    )
    # the cancel went through the control protocol (no signal): claude answered it, and a
    # warm process was not stopped (a cold one exits after its turn, as always)
    state = hive.paths.state_dir("alice")
    assert any(r["subtype"] == "success" for r in event_rows(state, "control_response"))
    exits = event_rows(state, "claude_exit")
    # (closing stdin after an interrupted turn, the CLI exits 1: its last result was an error)
    assert all(e["why"] == "closed" for e in exits), exits
    assert (not exits) if warm_seconds else exits


@BOTH_MODES
async def test_harness_killed_mid_turn_gets_its_message_again(
    make_hive: MakeHive, warm_seconds: float
) -> None:
    """The issue #12 loss, end to end: the harness read its wake-up message and was killed
    while the turn ran. The message was not acknowledged, so the next run gets it again."""
    scenario = {
        "rules": [
            {
                "id": "slow",
                "agent": "alice",
                "when_user_contains": FROM_OP,
                "chunk_delay_ms": 300,
                "text": " ".join(f"word{i}" for i in range(200)),
            },
        ]
    }
    hive, sim = await make_hive(scenario)
    await hive.spawn("alice")
    [msg] = await hive.broker.send("operator", "alice", "write a long essay")
    await eventually(lambda: sim.fired("slow"), 90, "the slow turn to start")
    await hive.lifecycle.kill_agent("alice")  # SIGKILL, mid-turn

    async def unread_again() -> bool:
        rows = await hive.broker.recent("alice", 10)
        row = next(r for r in rows if r.id == msg.id)
        return row.delivered_at is None and await hive.broker.unread("alice") >= 1

    await eventually(unread_again, 30, "the lease of the killed harness released")
    await hive.lifecycle.start_agent("alice")
    await eventually(lambda: sim.fired("slow") >= 2, 90, "the message offered to the new run")


ECHO_SERVER = """
from mcp.server.mcpserver import MCPServer
server = MCPServer(name="tools")

@server.tool(name="echo", structured_output=False)
def echo(text: str) -> str:
    return "echo: " + text

server.run()
"""


async def test_extra_mcp_server_tool_is_callable_and_hyperhive_key_dropped(
    make_hive: MakeHive,
) -> None:
    scenario = {
        "rules": [
            {
                "id": "call",
                "agent": "alice",
                "when_user_contains": FROM_OP,
                "reply": [
                    {"type": "tool_use", "name": "mcp__tools__echo", "input": {"text": "ping"}}
                ],
            },
            {
                "id": "done",
                "agent": "alice",
                "when_tool_result_for": "mcp__tools__echo",
                "text": "echoed",
            },
        ]
    }
    hive, sim = await make_hive(scenario)
    await hive.configs.seed("alice")
    state = hive.paths.state_dir("alice")
    state.mkdir(parents=True, exist_ok=True)
    (state / "echo_mcp.py").write_text(ECHO_SERVER)
    inside = (
        "/state"
        if hive.registry.get("manager") and hive.registry.require("manager").runtime == "bwrap"
        else str(state)
    )
    repo = hive.configs.repo("alice").path
    extra = (
        "\n[extra_mcp_servers.tools]\n"
        f'command = "{sys.executable}"\nargs = ["{inside}/echo_mcp.py"]\n'
        "\n[extra_mcp_servers.hyperhive]\n"
        'command = "/bin/false"\n'
    )
    (repo / "agent.toml").write_text((repo / "agent.toml").read_text() + extra)
    sha = commit_all(repo, "tools")
    await hive.configs.apply("alice", sha)
    await hive.spawn("alice")
    await hive.broker.send("operator", "alice", "use your echo tool")
    await eventually(lambda: sim.fired("done"), 90, "the echo round trip")
    req = next(r for r in sim.requests if r.rule_id == "done")
    assert "echo: ping" in "\n".join(t.text for t in req.tool_results)
    mcp = json.loads((state / ".hyperhive" / "mcp.json").read_text())
    assert mcp["mcpServers"]["hyperhive"]["args"][1:3] == ["hyperhive.mcptools", "--socket"]
    assert sorted(mcp["mcpServers"]) == ["hyperhive", "tools"]
