"""Issue 6's full loop with the real CLI: the manager proposes, the operator approves, the core
applies — and the applied config is what the agent then runs with."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from hyperhive.runtime.choose import sandbox_support
from tests.e2e.conftest import MakeHive
from tests.support.waiting import eventually

pytestmark = [pytest.mark.slow, pytest.mark.sandbox]

TOML = "/agents/dave/agent.toml"


def tool(tool_name: str, /, **input: Any) -> dict[str, Any]:
    return {"type": "tool_use", "name": tool_name, "input": input}


SCENARIO = {
    "rules": [
        {
            "id": "ask-init",
            "agent": "manager",
            "when_user_contains": "set up dave",
            "reply": [
                tool(
                    "mcp__hyperhive__request_init_config",
                    name="dave",
                    description="a worker for the reports",
                )
            ],
        },
        {
            "id": "asked",
            "agent": "manager",
            "when_tool_result_for": "mcp__hyperhive__request_init_config",
            "text": "Asked the operator.",
        },
        {
            "id": "read",
            "agent": "manager",
            "when_user_contains": "config_ready",
            "reply": [tool("Read", file_path=TOML)],
        },
        {
            "id": "edit",
            "agent": "manager",
            "when_tool_result_for": "Read",
            "reply": [
                tool(
                    "Edit",
                    file_path=TOML,
                    old_string="allowed_recipients = []",
                    new_string='allowed_recipients = ["manager"]',
                )
            ],
        },
        {
            "id": "commit",
            "agent": "manager",
            "when_tool_result_for": "Edit",
            "reply": [
                tool(
                    "Bash",
                    command="git -C /agents/dave commit -qam 'dave talks to the manager only' && git -C /agents/dave rev-parse HEAD",
                    description="commit the change",
                )
            ],
        },
        {
            "id": "ask-apply",
            "agent": "manager",
            "when_tool_result_for": "Bash",
            "reply": [
                tool(
                    "mcp__hyperhive__request_apply_commit",
                    agent="dave",
                    sha="{tool_result}",
                    description="restrict dave to the manager",
                )
            ],
        },
        {
            "id": "applied",
            "agent": "manager",
            "when_tool_result_for": "mcp__hyperhive__request_apply_commit",
            "text": "Waiting for approval.",
        },
        {
            "id": "dave-tries",
            "agent": "dave",
            "when_user_contains": "from operator",
            "reply": [tool("mcp__hyperhive__send", to="alice", body="hi alice")],
        },
        {
            "id": "dave-refused",
            "agent": "dave",
            "when_tool_result_for": "mcp__hyperhive__send",
            "text": "I will ask the manager.",
        },
    ]
}


async def test_manager_edits_config_operator_approves_agent_runs_it(make_hive: MakeHive) -> None:
    if (why := sandbox_support()) is not None:
        pytest.skip(f"needs bubblewrap: {why}")
    hive, sim = await make_hive(SCENARIO, runtime="bwrap")
    await hive.spawn("alice")
    await hive.broker.send("operator", "manager", "please set up dave for the reports")

    async def pending(kind: str) -> list[Any]:
        return [a for a in await hive.approvals.pending() if a.kind == kind and a.agent == "dave"]

    [init] = await eventually(lambda: pending("init_config"), 90, "the init_config request")  # type: ignore[misc]
    assert init.requested_by == "manager" and "reports" in init.description
    await hive.approvals.approve(init.id)

    [apply] = await eventually(lambda: pending("apply_commit"), 120, "the apply_commit request")  # type: ignore[misc]
    repo = hive.paths.config_repo("dave")
    git = ["git", "-c", "safe.directory=*", "-C", str(repo)]
    head = subprocess.run(
        [*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    author = subprocess.run(
        [*git, "log", "-1", "--format=%an"], check=True, capture_output=True, text=True
    ).stdout.strip()
    assert apply.fetched_sha == head and author == "manager"  # the manager's own commit, pinned
    assert "allowed_recipients" in (await hive.approvals.diff(apply.id) or "")
    await hive.approvals.approve(apply.id)
    assert hive.agent_configs.get("dave").allowed_recipients == ["manager"]

    await hive.spawn("dave")
    await hive.broker.send("operator", "dave", "say hi to alice")
    await eventually(lambda: sim.fired("dave-refused"), 90, "dave's refused send")
    refused = next(r for r in sim.requests if r.rule_id == "dave-refused")
    assert "refused" in "\n".join(t.text for t in refused.tool_results)
    assert all(m.sender != "dave" for m in await hive.broker.recent("alice", 50))
