"""Tool permissions asked of the operator, end to end: a real sandboxed harness with the warm
driver, the real CLI asking (`can_use_tool`) about an `ask_operator_for` use, the core showing
it (the agent waits for the operator) and the operator's allow / deny-with-a-note reaching
the model — with one process per turn and with a warm one."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from hyperhive.core.hive import Hive
from hyperhive.core.permissions import PermissionsFeature
from hyperhive.core.status import status_row
from hyperhive.wire.permissions import PermissionRow
from tests.e2e.conftest import BOTH_MODES, MakeHive, event_rows, turns
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow

SCENARIO = {
    "rules": [
        {
            "id": "push",
            "agent": "alice",
            "when_user_contains": "publish",
            "reply": [{"type": "tool_use", "name": "Bash", "input": {"command": "echo pushed"}}],
        },
        {
            "id": "after",
            "agent": "alice",
            "when_tool_result_for": "Bash",
            "text": "tool said: {tool_result}",
        },
    ]
}


def perms(hive: Hive) -> PermissionsFeature:
    feature = hive.feature("permissions")
    assert isinstance(feature, PermissionsFeature)
    return feature


async def asked(hive: Hive) -> PermissionRow:
    async def first() -> PermissionRow | None:
        rows = await perms(hive).pending()
        return rows[0] if rows else None

    row = await eventually(first, 120, "alice's CLI to ask the operator")
    assert isinstance(row, PermissionRow)
    return row


def last_tool_result(sim: Any, n: int) -> tuple[str, bool]:
    """The text and `is_error` of the newest tool result the model got in its `n`th
    request after a tool use."""
    reqs = [r for r in sim.requests if r.rule_id == "after"]
    assert len(reqs) >= n
    found: list[tuple[str, bool]] = []
    for m in reqs[n - 1].body["messages"]:
        content = m.get("content") if isinstance(m, dict) else None
        for block in content if isinstance(content, list) else []:
            if isinstance(block, dict) and block.get("type") == "tool_result":
                inner = block.get("content")
                text = (
                    inner
                    if isinstance(inner, str)
                    else "".join(c.get("text", "") for c in inner or [] if isinstance(c, dict))
                )
                found.append((text, bool(block.get("is_error"))))
    assert found, reqs[n - 1].body["messages"]
    return found[-1]


@BOTH_MODES
async def test_operator_allows_then_denies_with_a_note(
    make_hive: MakeHive, warm_seconds: float
) -> None:
    hive, sim = await make_hive(SCENARIO, defaults={"ask_operator_for": ["Bash(echo pushed:*)"]})
    await hive.spawn("alice")
    await hive.broker.send("operator", "alice", "publish the release")
    row = await asked(hive)
    assert (row.agent, row.tool, row.rule) == ("alice", "Bash", "Bash(echo pushed:*)")
    assert row.input["command"] == "echo pushed"
    state = await status_row(hive, "alice")
    assert state.state == "waiting_operator" and "echo pushed" in (state.state_note or "")
    await perms(hive).decide(row.id, "allow")
    await eventually(lambda: sim.fired("after") == 1, 120, "the turn to go on")
    assert last_tool_result(sim, 1) == ("pushed", False)  # the command ran

    await hive.broker.send("operator", "alice", "publish it again")
    row = await asked(hive)
    await perms(hive).decide(row.id, "deny", "not on a Friday")
    await eventually(lambda: sim.fired("after") == 2, 120, "the model to hear the denial")
    text, is_error = last_tool_result(sim, 2)
    assert is_error and "not on a Friday" in text
    assert (await status_row(hive, "alice")).state != "waiting_operator"
    # the agent's page showed it waiting, then what was decided (its event list)
    notes = [e["text"] for e in event_rows(hive.paths.state_dir("alice"), "note")]
    assert "waiting for the operator: may it use Bash(echo pushed)?" in notes
    assert "the operator allowed Bash(echo pushed)" in notes
    assert "the operator did not allow Bash(echo pushed): not on a Friday" in notes
    states = [e["state"] for e in event_rows(hive.paths.state_dir("alice"), "state")]
    assert states.count("waiting_operator") == 2  # its page's badge, once per ask
    i = states.index("waiting_operator")
    assert states[i - 1 : i + 2] == ["thinking", "waiting_operator", "thinking"]


async def test_cancelling_the_turn_withdraws_the_ask(make_hive: MakeHive) -> None:
    """The operator cancels the turn while it waits: the request leaves the operator's list
    (withdrawn, `dropped`), the turn is recorded cancelled, and the next turn asks afresh."""
    hive, sim = await make_hive(SCENARIO, defaults={"ask_operator_for": ["Bash(echo pushed:*)"]})
    await hive.spawn("alice")
    await hive.broker.send("operator", "alice", "publish the release")
    row = await asked(hive)
    transport = httpx.AsyncHTTPTransport(uds=str(hive.paths.web_sock("alice")))
    async with httpx.AsyncClient(transport=transport, base_url="http://alice") as web:
        answer = (await web.post("/api/cancel")).json()
    assert answer["ok"] is True and answer["cancelled"] is True

    async def withdrawn() -> bool:
        return (await perms(hive).get(row.id)).status == "dropped"

    await eventually(withdrawn, 60, "the ask withdrawn")
    assert (await perms(hive).get(row.id)).note.startswith("[withdrawn")
    await eventually(
        lambda: any(r["wake_from"] == "operator" for r in turns(hive, "alice")), 60, "the row"
    )
    row0 = next(r for r in turns(hive, "alice") if r["wake_from"] == "operator")
    assert row0["result_kind"] == "cancelled"
    await hive.broker.send("operator", "alice", "publish, second try")
    again = await asked(hive)
    assert again.id != row.id
    await perms(hive).decide(again.id, "allow")
    await eventually(lambda: sim.fired("after") == 1, 120, "the turn to go on")
