"""The operator gate: which `can_use_tool` asks go to the operator, what the model is told,
and (slow) the real CLI asking the host for an `ask_operator_for` tool over its control
protocol, the gate routing it to a real core and the operator's decision reaching the model."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hyperhive.client.agent import NO_RETRY
from hyperhive.client.host import HostClient
from hyperhive.core.hive import Hive
from hyperhive.harness.opgate import OperatorGate, describe, gate_for, shown_input
from hyperhive.harness.permgate import Allow, Deny, PermissionAsk
from hyperhive.harness.settings import settings_json
from hyperhive.harness.warmhooks import RefuseUnlisted
from hyperhive.sim import SimServer
from hyperhive.sim.scenario import Scenario
from tests.support.claude_run import CLAUDE, CLI_TIMEOUT, offline_env
from tests.support.waiting import eventually

PUSH = PermissionAsk("Bash", {"command": "git push origin main"}, "toolu_1", "rule")


def gate(hive: Hive, ask_for: list[str]) -> OperatorGate:
    return OperatorGate(hive.paths.agent_sock("alice"), ask_for, retry=NO_RETRY)


async def decide_first(
    hive: Hive, decision: str, note: str | None = None, timeout: float = 10.0
) -> dict[str, Any]:
    """Decide the first pending permission request, waiting up to `timeout` for one."""
    host = HostClient(hive.paths.host_sock)

    async def first() -> dict[str, Any] | None:
        rows = (await host.call("permissions"))["permissions"]
        return rows[0] if rows else None

    row = await eventually(first, timeout=timeout, what="a pending permission request")
    assert isinstance(row, dict)
    fields: dict[str, Any] = {"id": row["id"], "decision": decision}
    if note is not None:
        fields["note"] = note
    await host.call("decide_permission", **fields)
    return row


async def test_matching_use_waits_for_the_operator(hive: Hive) -> None:
    await hive.spawn("alice")
    said: list[str] = []
    g = OperatorGate(
        hive.paths.agent_sock("alice"),
        ["Write", "Bash(git push:*)"],
        notify=said.append,
        retry=NO_RETRY,
    )
    try:
        asked = asyncio.create_task(g.decide(PUSH))
        row = await decide_first(hive, "allow")
        assert await asyncio.wait_for(asked, 10) == Allow()
        assert row["rule"] == "Bash(git push:*)" and row["tool_use_id"] == "toolu_1"
        assert row["reason"] == "rule"
        asked = asyncio.create_task(
            g.decide(PermissionAsk("Bash", {"command": "git push origin main"}, "toolu_2"))
        )
        await decide_first(hive, "deny", "use a pull request")
        assert await asyncio.wait_for(asked, 10) == Deny("use a pull request")
    finally:
        await g.aclose()
    assert said[0] == "waiting for the operator: may it use Bash(git push origin main)?"
    assert said[1] == "the operator allowed Bash(git push origin main)"
    assert said[-1].endswith("use a pull request")


async def test_a_cancelled_ask_is_withdrawn(hive: Hive) -> None:
    """The driver cancels the answer (an interrupted turn): the operator no longer sees the
    request, and the gate's next ask works (its connection was replaced)."""
    await hive.spawn("alice")
    said: list[str] = []
    sock = hive.paths.agent_sock("alice")
    g = OperatorGate(sock, ["Bash"], notify=said.append, retry=NO_RETRY)
    host = HostClient(hive.paths.host_sock)
    try:
        asked = asyncio.create_task(g.decide(PUSH))
        await eventually(lambda: _pending(host), what="the ask pending")
        asked.cancel()
        await asyncio.gather(asked, return_exceptions=True)
        await eventually(lambda: _none_pending(host), what="the ask withdrawn")
        again = asyncio.create_task(g.decide(PermissionAsk("Bash", {"command": "ls"}, "toolu_9")))
        await decide_first(hive, "allow")
        assert await asyncio.wait_for(again, 10) == Allow()
    finally:
        await g.aclose()
    assert "no longer waiting for the operator about Bash(git push origin main)" in said


async def test_an_ask_open_when_the_turn_ends_is_withdrawn(hive: Hive) -> None:
    await hive.spawn("alice")
    said: list[str] = []
    g = OperatorGate(hive.paths.agent_sock("alice"), ["Bash"], notify=said.append, retry=NO_RETRY)
    host = HostClient(hive.paths.host_sock)
    try:
        asked = asyncio.create_task(g.decide(PUSH))
        await eventually(lambda: _pending(host), what="the ask pending")
        g.turn_ended()
        got = await asyncio.wait_for(asked, 10)
        assert isinstance(got, Deny) and got.message.startswith("[withdrawn")
        await eventually(lambda: _none_pending(host), what="the ask withdrawn")
        g.turn_ended()  # nothing open: nothing to do
    finally:
        await g.aclose()
    assert "no longer waiting for the operator about Bash(git push origin main)" in said


async def _pending(host: HostClient) -> bool:
    return bool((await host.call("permissions"))["permissions"])


async def _none_pending(host: HostClient) -> bool:
    return not (await host.call("permissions"))["permissions"]


async def test_parallel_asks_are_shown_together(hive: Hive) -> None:
    """Two tool uses the CLI asks about at once both reach the operator at once; the turn
    waits for the operator (`on_wait`) until neither is open."""
    await hive.spawn("alice")
    waits: list[bool] = []
    g = OperatorGate(hive.paths.agent_sock("alice"), ["Bash"], on_wait=waits.append, retry=NO_RETRY)
    host = HostClient(hive.paths.host_sock)
    try:
        first = asyncio.create_task(g.decide(PUSH))
        second = asyncio.create_task(g.decide(PermissionAsk("Bash", {"command": "ls"}, "tu2")))

        async def both() -> list[dict[str, Any]] | None:
            rows: list[dict[str, Any]] = (await host.call("permissions"))["permissions"]
            return rows if len(rows) == 2 else None

        rows = await eventually(both, what="both asks pending")
        assert isinstance(rows, list)
        by_id = {r["input"]["command"]: r["id"] for r in rows}
        await host.call("decide_permission", id=by_id["ls"], decision="deny", note="no")
        assert await asyncio.wait_for(second, 10) == Deny("no")
        assert not first.done()
        assert waits == [True]  # still one open
        await host.call("decide_permission", id=by_id["git push origin main"], decision="allow")
        assert await asyncio.wait_for(first, 10) == Allow()
    finally:
        await g.aclose()
    assert waits == [True, False]


async def test_other_tools_are_denied_without_asking(hive: Hive) -> None:
    await hive.spawn("alice")
    g = gate(hive, ["Bash(git push:*)"])
    try:
        got = await g.decide(PermissionAsk("mcp__other__tool", {"a": 1}))
        assert isinstance(got, Deny) and "you haven't granted it yet" in got.message
        got = await g.decide(PermissionAsk("Bash", {"command": "git status"}))
        assert isinstance(got, Deny)
    finally:
        await g.aclose()
    assert (await HostClient(hive.paths.host_sock).call("permissions"))["permissions"] == []


async def test_an_unreachable_core_is_a_denial(short_tmp: Path) -> None:
    sock = short_tmp / "nobody.sock"
    g = OperatorGate(sock, ["Bash"], retry=NO_RETRY)
    got = await g.decide(PUSH)
    assert isinstance(got, Deny) and "could not ask the operator" in got.message


def test_gate_for_and_display_helpers() -> None:
    assert isinstance(gate_for("/x.sock", []), RefuseUnlisted)
    assert isinstance(gate_for("/x.sock", ["Write"]), OperatorGate)
    shown = shown_input({"content": "x" * 5000, "n": [1, None, True], "o": object()})
    assert shown["content"].endswith("… [1000 more characters]")
    assert shown["n"] == [1, None, True] and isinstance(shown["o"], str)
    json.dumps(shown)
    assert describe("Bash", {"command": "git  push"}) == "Bash(git push)"
    assert describe("Write", {"file_path": "/state/a"}) == "Write(/state/a)"
    assert describe("mcp__x__y", {"a": 1}) == "mcp__x__y"


def test_settings_carry_the_ask_list() -> None:
    s = settings_json("agent", ask=["Bash(git push:*)", "Bash(git push:*)"])
    assert s["permissions"]["ask"] == ["Bash(git push:*)"]
    assert "ask" not in settings_json("agent")["permissions"]


# -- the real CLI ---------------------------------------------------------------------------

SCENARIO = {
    "default": {"text": "done: {tool_result}"},
    "rules": [
        {
            "when_user_contains": "publish",
            "reply": [
                {"type": "tool_use", "name": "Bash", "input": {"command": "echo pushed"}},
            ],
        },
        {
            "when_user_contains": "harmless",
            "reply": [{"type": "tool_use", "name": "Bash", "input": {"command": "echo fine"}}],
        },
    ],
}


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    async with SimServer(Scenario.model_validate(SCENARIO)) as s:
        yield s


async def cli_turns(
    sim: SimServer, home: Path, g: OperatorGate, prompts: list[str]
) -> list[list[dict[str, Any]]]:
    """Drive the real CLI with stream-json input, answering its `can_use_tool` control
    requests through `g` as the harness's driver does; the lines of each turn."""
    assert CLAUDE is not None
    (home / "work").mkdir(parents=True, exist_ok=True)
    settings = settings_json("agent", ask=["Bash(echo pushed:*)"])
    (home / "settings.json").write_text(json.dumps(settings))
    proc = await asyncio.create_subprocess_exec(
        str(CLAUDE),
        "-p",
        "--input-format",
        "stream-json",
        "--output-format",
        "stream-json",
        "--verbose",
        "--model",
        "haiku",
        "--settings",
        str(home / "settings.json"),
        "--permission-prompt-tool",
        "stdio",
        cwd=home / "work",
        env=offline_env(sim.url_for("alice"), home),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert proc.stdin is not None and proc.stdout is not None
    turns: list[list[dict[str, Any]]] = []

    def write(obj: dict[str, Any]) -> None:
        assert proc.stdin is not None
        proc.stdin.write((json.dumps(obj) + "\n").encode())

    try:
        async with asyncio.timeout(CLI_TIMEOUT * len(prompts)):
            for prompt in prompts:
                write(
                    {
                        "type": "user",
                        "message": {"role": "user", "content": prompt},
                        "parent_tool_use_id": None,
                        "session_id": "",
                    }
                )
                lines: list[dict[str, Any]] = []
                while True:
                    raw = await proc.stdout.readline()
                    assert raw, "the CLI ended mid-turn"
                    line = json.loads(raw)
                    lines.append(line)
                    if line.get("type") == "control_request":
                        req = line["request"]
                        decision = await g.decide(
                            PermissionAsk(
                                req["tool_name"],
                                req.get("input", {}),
                                req.get("tool_use_id"),
                                req.get("decision_reason_type"),
                            )
                        )
                        answer: dict[str, Any] = (
                            {"behavior": "allow", "updatedInput": req.get("input", {})}
                            if isinstance(decision, Allow)
                            else {"behavior": "deny", "message": decision.message}
                        )
                        write(
                            {
                                "type": "control_response",
                                "response": {
                                    "subtype": "success",
                                    "request_id": line["request_id"],
                                    "response": answer,
                                },
                            }
                        )
                    if line.get("type") == "result":
                        break
                turns.append(lines)
    finally:
        proc.stdin.close()
        try:
            async with asyncio.timeout(CLI_TIMEOUT):
                await proc.wait()
        except TimeoutError:
            proc.kill()
            await proc.wait()
    return turns


def tool_results(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        block
        for line in lines
        if line.get("type") == "user"
        for block in line["message"]["content"]
        if isinstance(block, dict) and block.get("type") == "tool_result"
    ]


def text_of(block: dict[str, Any]) -> str:
    content = block["content"]
    if isinstance(content, str):
        return content
    return "".join(c.get("text", "") for c in content)


@pytest.mark.slow
async def test_real_cli_asks_the_operator_through_the_gate(
    hive: Hive, sim: SimServer, short_tmp: Path
) -> None:
    await hive.spawn("alice")
    g = gate(hive, ["Bash(echo pushed:*)"])

    async def operator() -> None:
        # each ask comes after a (cold, on a loaded machine slow) CLI turn: wait as long as
        # the CLI is given, not the default 10 s (the wait ran out before the first ask and
        # the CLI then waited for a decision until pytest's timeout: a "hang")
        await decide_first(hive, "allow", timeout=CLI_TIMEOUT)
        await decide_first(hive, "deny", "not on a Friday", timeout=CLI_TIMEOUT)

    try:
        # one group: an operator that fails ends the CLI's turns at once instead of leaving
        # the CLI waiting for a decision that never comes
        async with asyncio.TaskGroup() as tg:
            tg.create_task(operator())
            turns = tg.create_task(
                cli_turns(
                    sim,
                    short_tmp / "home",
                    g,
                    ["publish it", "something harmless", "publish again"],
                )
            )
    finally:
        await g.aclose()
    allowed, harmless, denied = turns.result()
    [res] = tool_results(allowed)
    assert not res.get("is_error") and text_of(res).strip() == "pushed"
    assert any(line.get("type") == "control_request" for line in allowed)
    # allowed by the agent's allow list: the CLI never asks
    assert not any(line.get("type") == "control_request" for line in harmless)
    assert text_of(tool_results(harmless)[0]).strip() == "fine"
    [res] = tool_results(denied)
    assert res.get("is_error") and text_of(res) == "not on a Friday"
    assert denied[-1]["permission_denials"][0]["tool_name"] == "Bash"
