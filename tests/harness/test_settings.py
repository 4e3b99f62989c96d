"""Permission settings, MCP config, argv and environment for one claude turn."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from hyperhive.harness.settings import (
    ALWAYS_DENY,
    BUILTIN_TOOLS,
    QUIET_ENV,
    ExtraServer,
    claude_argv,
    claude_env,
    mcp_config,
    offline_env,
    project_dir_name,
    settings_json,
)

# -- settings_json --------------------------------------------------------------------------


@pytest.mark.parametrize("flavor", ["agent", "manager"])
def test_settings_json_shape(flavor: Any) -> None:
    settings = settings_json(flavor)
    assert set(settings) == {"permissions"}
    perms = settings["permissions"]
    assert set(perms) == {"allow", "deny"}
    for tool in ("Read", "Write", "Edit", "Bash", "NotebookEdit"):
        assert tool in perms["allow"]
    assert "mcp__hyperhive" in perms["allow"]
    for tool in ("TodoWrite", "WebFetch", "WebSearch", "Task"):
        assert tool in perms["deny"]
    assert not set(perms["allow"]) & set(perms["deny"])
    json.dumps(settings)  # JSON-able
    assert "bypassPermissions" not in json.dumps(settings)
    assert "defaultMode" not in json.dumps(settings)


def test_settings_json_extras_and_dedup() -> None:
    perms = settings_json(
        "agent", extra_allow=["mcp__gh", "Bash", "", "mcp__gh"], extra_deny=["Bash(rm:*)", "Task"]
    )["permissions"]
    assert perms["allow"].count("Bash") == 1
    assert perms["allow"].count("mcp__gh") == 1
    assert "" not in perms["allow"]
    assert perms["allow"][: len(BUILTIN_TOOLS)] == list(BUILTIN_TOOLS)
    assert perms["deny"][: len(ALWAYS_DENY)] == list(ALWAYS_DENY)
    assert perms["deny"].count("Task") == 1
    assert "Bash(rm:*)" in perms["deny"]


def test_settings_json_unknown_flavor() -> None:
    with pytest.raises(ValueError, match="flavor"):
        settings_json("queen")  # type: ignore[arg-type]


# -- mcp_config -----------------------------------------------------------------------------


def test_mcp_config_hyperhive_only() -> None:
    config, allow, warnings = mcp_config(
        ["/usr/bin/python3", "-m", "hyperhive.mcptools", "--socket", "/run/hive/agent.sock"],
        {"HIVE_AGENT": "alice"},
        {},
    )
    assert config == {
        "mcpServers": {
            "hyperhive": {
                "type": "stdio",
                "command": "/usr/bin/python3",
                "args": ["-m", "hyperhive.mcptools", "--socket", "/run/hive/agent.sock"],
                "env": {"HIVE_AGENT": "alice"},
            }
        }
    }
    assert (allow, warnings) == ([], [])


def test_mcp_config_extra_servers() -> None:
    config, allow, warnings = mcp_config(
        ["hive-mcp"],
        {},
        {
            "github": {"command": "gh-mcp", "args": ["--ro"], "env": {"TOKEN": "t"}},
            "files": {"command": "fs-mcp", "allowed_tools": ["read_file", "list_dir"]},
            "all": {"command": "x", "allowed_tools": ["read", "*"]},
            "none": {"command": "y", "allowed_tools": []},
        },
    )
    assert warnings == []
    servers = config["mcpServers"]
    assert list(servers) == ["hyperhive", "github", "files", "all", "none"]
    assert servers["github"] == {
        "type": "stdio",
        "command": "gh-mcp",
        "args": ["--ro"],
        "env": {"TOKEN": "t"},
    }
    assert servers["files"]["args"] == [] and servers["files"]["env"] == {}
    assert allow == ["mcp__github", "mcp__files__read_file", "mcp__files__list_dir", "mcp__all"]


@pytest.mark.parametrize(
    ("key", "entry", "needle"),
    [
        ("hyperhive", {"command": "evil"}, "reserved"),
        ("bad key", {"command": "x"}, "key"),
        ("a__b", {"command": "x"}, "__"),
        ("x" * 65, {"command": "x"}, "key"),
        ("nocmd", {"args": []}, "command"),
        ("emptycmd", {"command": ""}, "command"),
        ("argsnotlist", {"command": "x", "args": "--flag"}, "args"),
        ("envints", {"command": "x", "env": {"A": 1}}, "env"),
        ("typo", {"command": "x", "allowed_tool": ["*"]}, "allowed_tool"),
        ("badtool", {"command": "x", "allowed_tools": ["ok", "no spaces"]}, "no spaces"),
        ("notadict", ["command", "x"], "notadict"),
    ],
)
def test_mcp_config_bad_entries_are_skipped_with_a_warning(
    key: str, entry: Any, needle: str
) -> None:
    config, allow, warnings = mcp_config(["hive-mcp"], {}, {key: entry, "good": {"command": "ok"}})
    assert list(config["mcpServers"]) == ["hyperhive", "good"]
    assert config["mcpServers"]["hyperhive"]["command"] == "hive-mcp"
    assert allow == ["mcp__good"]
    assert len(warnings) == 1
    assert repr(key) in warnings[0] and needle in warnings[0]


def test_extra_server_parse_fills_defaults() -> None:
    assert ExtraServer.parse({"command": "x"}) == ExtraServer("x", (), {}, ("*",))
    server = ExtraServer.parse(
        {"command": "x", "args": ["-v"], "env": {"A": "1"}, "allowed_tools": ["t"]}
    )
    assert server == ExtraServer("x", ("-v",), {"A": "1"}, ("t",))


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({}, "command: Field required"),
        ({"command": 5}, "command: Input should be a valid string"),
        ({"command": ""}, "command: String should have at least 1 character"),
        ({"command": "x", "args": "-v"}, "args: Input should be a valid list"),
        ({"command": "x", "args": ["-v", 2]}, "args.1: Input should be a valid string"),
        ({"command": "x", "env": []}, "env: Input should be a valid dictionary"),
        ({"command": "x", "env": {"A": True}}, "env.A: Input should be a valid string"),
        ({"command": "x", "allowed_tools": "*"}, "allowed_tools: Input should be a valid list"),
        ({"command": "x", "cmd": "y"}, "cmd: Extra inputs are not permitted"),
        ({"command": "", "cmd": "y"}, "command: String should have at least 1 character"),
        ("x", "entry: Input should be a valid dictionary"),
    ],
)
def test_extra_server_parse_names_the_first_problem(entry: Any, message: str) -> None:
    """Plain-Python checks with the wording of the core's pydantic `ExtraMcpServer` (fields in
    order, then unknown keys); no coercion (an int is not a string)."""
    with pytest.raises(ValueError) as info:
        ExtraServer.parse(entry)
    assert str(info.value) == message


def test_mcp_config_needs_a_command() -> None:
    with pytest.raises(ValueError):
        mcp_config([], {}, {})


# -- argv -----------------------------------------------------------------------------------


def test_claude_argv_full() -> None:
    argv = claude_argv(
        "/bin/claude",
        prompt="--looks-like-a-flag hello",
        model="haiku",
        settings_path=Path("/s/settings.json"),
        mcp_path="/s/mcp.json",
        system_prompt_path="/s/system.md",
        continue_session=True,
        allowed_tools=["Bash", "mcp__hyperhive"],
        disallowed_tools=["WebFetch"],
    )
    assert argv == [
        "/bin/claude",
        "-p",
        "--output-format",
        "stream-json",
        "--verbose",
        "--include-partial-messages",
        "--model",
        "haiku",
        "--continue",
        "--settings",
        "/s/settings.json",
        "--mcp-config",
        "/s/mcp.json",
        "--strict-mcp-config",
        "--system-prompt-file",
        "/s/system.md",
        "--allowedTools",
        "Bash",
        "mcp__hyperhive",
        "--disallowedTools",
        "WebFetch",
        "--",
        "--looks-like-a-flag hello",
    ]


def test_claude_argv_minimal() -> None:
    argv = claude_argv("claude", prompt="hi")
    assert argv == [
        "claude",
        "-p",
        "--output-format",
        "stream-json",
        "--verbose",
        "--include-partial-messages",
        "--strict-mcp-config",
        "--",
        "hi",
    ]
    assert "--continue" not in argv and "--allowedTools" not in argv


# -- environment ----------------------------------------------------------------------------


def test_offline_env(tmp_path: Path) -> None:
    inherit = {
        "PATH": "/opt/bin:/usr/bin",
        "LANG": "C.UTF-8",
        "ANTHROPIC_API_KEY": "leak",
        "ANTHROPIC_MODEL": "leak",
        "CLAUDECODE": "1",
        "CLAUDE_CODE_ENTRYPOINT": "cli",
        "CLAUDE_CONFIG_DIR": "/root/.claude",
    }
    env = offline_env(
        "http://127.0.0.1:9/a/alice",
        "k",
        home=tmp_path,
        config_dir=tmp_path / ".claude",
        inherit=inherit,
    )
    assert env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:9/a/alice"
    assert env["ANTHROPIC_API_KEY"] == "k"
    assert env["CLAUDE_CODE_MAX_RETRIES"] == "0"
    assert env["HOME"] == str(tmp_path)
    assert env["CLAUDE_CONFIG_DIR"] == str(tmp_path / ".claude")
    assert env["PATH"] == "/opt/bin:/usr/bin" and env["LANG"] == "C.UTF-8"
    for key, value in {
        "DISABLE_AUTOUPDATER": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "MCP_CONNECTION_NONBLOCKING": "false",
        "MCP_CONNECT_TIMEOUT_MS": "60000",
        "ENABLE_TOOL_SEARCH": "false",
    }.items():
        assert env[key] == value
    assert "ANTHROPIC_MODEL" not in env and "CLAUDECODE" not in env
    assert "CLAUDE_CODE_ENTRYPOINT" not in env
    assert all(isinstance(v, str) for v in env.values())


def test_claude_env_for_a_login(tmp_path: Path) -> None:
    env = claude_env(home=tmp_path, config_dir=tmp_path / ".claude")
    assert "ANTHROPIC_BASE_URL" not in env and "ANTHROPIC_API_KEY" not in env
    assert "CLAUDE_CODE_MAX_RETRIES" not in env  # real Anthropic: keep the CLI's retries
    assert env["PATH"]
    assert QUIET_ENV.items() <= env.items()


# -- binary and project dir -----------------------------------------------------------------


def _exe(path: Path) -> Path:
    path.write_text("#!/bin/sh\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_project_dir_name() -> None:
    assert project_dir_name("/tmp/cc1/work") == "-tmp-cc1-work"
    assert project_dir_name("/srv/my_agent.v2/state") == "-srv-my-agent-v2-state"
    assert len(project_dir_name("/x" * 300)) == 200
