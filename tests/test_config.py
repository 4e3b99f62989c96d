"""hive.toml and agent.toml validation: unknown keys and bad values name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from hyperhive.agentconfig import TEMPLATE, parse_agent_config
from hyperhive.config import HiveConfig, load_config, parse_config
from hyperhive.errors import ConfigError


def test_missing_file_means_defaults(tmp_path: Path) -> None:
    assert load_config(tmp_path / "hive.toml") == HiveConfig()


def test_full_config_parses() -> None:
    cfg = parse_config(
        """
        [defaults]
        model = "sonnet"
        runtime = "process"
        [model_endpoint]
        base_url = "http://127.0.0.1:9999"
        [dashboard]
        listen = "127.0.0.1:7001"
        [retention]
        messages_days = 10
        """
    )
    assert cfg.defaults.model == "sonnet" and cfg.retention.messages_days == 10


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[retention]\nmessages_dayz = 3\n", "unknown key 'retention.messages_dayz'"),
        ("[retention]\nmessages_days = -1\n", "retention.messages_days"),
        ("[defaults]\nruntime = 'docker'\n", "defaults.runtime"),
        ("bogus = 1\n", "unknown key 'bogus'"),
        ("[manager]\nname = '../m'\n", "manager.name"),
        ("not toml [", "not valid TOML"),
    ],
)
def test_bad_hive_config_names_the_key(text: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=None) as info:
        parse_config(text)
    assert needle in str(info.value)


def test_agent_template_is_valid() -> None:
    cfg = parse_agent_config(TEMPLATE)
    assert cfg.allowed_recipients == [] and cfg.extra_mcp_servers == {}


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("allowed_recipientz = []", "unknown key 'allowed_recipientz'"),
        ("role_prompt = '../etc/passwd'", "role_prompt"),
        ("[packages]\nro_paths = ['relative']", "packages.ro_paths"),
        ("[extra_mcp_servers.x]\nargs = []", "extra_mcp_servers.x.command"),
        ("network = 'wifi'", "network"),
    ],
)
def test_bad_agent_config_names_the_key(text: str, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_agent_config(text)
    assert needle in str(info.value)
