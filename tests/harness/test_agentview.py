"""The harness's view of the agent config the core sends (`hyperhive.harness.agentview`)."""

from __future__ import annotations

from typing import Any

import pytest

from hyperhive.agentconfig import AgentConfig, parse_agent_config
from hyperhive.errors import ConfigError
from hyperhive.harness.agentview import AgentView


def test_defaults_match_agentconfig_defaults() -> None:
    view = AgentView.from_json(AgentConfig().model_dump(mode="json"))
    assert view == AgentView()
    assert AgentView.from_json({}) == AgentView()


def test_reads_what_the_core_sends() -> None:
    cfg = parse_agent_config(
        """
model = "sonnet"
allowed_tools = ["Bash(git:*)"]
denied_tools = ["Bash(rm:*)", "Edit"]
network = "egress"

[env]
FOO = "bar"

[limits]
memory_mb = 512

[extra_mcp_servers.gh]
command = "gh-mcp"
args = ["--ro"]
"""
    )
    view = AgentView.from_json(cfg.model_dump(mode="json"))  # what the `config` verb answers
    assert view.allowed_tools == ("Bash(git:*)",)
    assert view.denied_tools == ("Bash(rm:*)", "Edit")
    assert view.env == {"FOO": "bar"}
    assert view.extra_mcp_servers == {
        "gh": {"command": "gh-mcp", "args": ["--ro"], "env": {}, "allowed_tools": ["*"]}
    }


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (["not", "an", "object"], "expected an object"),
        ({"allowed_tools": "Bash"}, "allowed_tools"),
        ({"denied_tools": [1]}, "denied_tools"),
        ({"env": {"A": 1}}, "env"),
        ({"env": ["A=1"]}, "env"),
        ({"extra_mcp_servers": []}, "extra_mcp_servers"),
    ],
)
def test_a_wrong_shape_is_a_config_error_naming_the_key(data: Any, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        AgentView.from_json(data)


def test_bad_extra_servers_stay_raw_for_mcp_config_to_skip() -> None:
    view = AgentView.from_json({"extra_mcp_servers": {"x": {"command": ""}, "y": "junk"}})
    assert view.extra_mcp_servers == {"x": {"command": ""}, "y": "junk"}
