"""`hyperhive.claudebin`, the one claude resolver: `HIVE_CLAUDE_BIN`, else hive.toml's
`[defaults] claude_bin`, else the bundled CLI, else PATH; a named binary that is not there is an
error naming its source. Every runtime honours it: the bwrap runtime binds the binary it names
(it used to bind only the bundled one, and the harness inside then could not find its CLI)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from hyperhive import claudebin
from hyperhive.assembly import build_hive
from hyperhive.claudebin import claude_binary_or_none, find_claude_binary
from hyperhive.config import Defaults, HiveConfig
from hyperhive.errors import Unavailable
from hyperhive.paths import HivePaths
from hyperhive.runtime.bwrap import claude_binary, python_binds


def _exe(path: Path) -> Path:
    path.write_text("#!/bin/sh\necho fake-claude\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_the_environment_wins_then_hive_toml(tmp_path: Path) -> None:
    env_bin = _exe(tmp_path / "claude-env")
    toml_bin = _exe(tmp_path / "claude-toml")
    env = {"HIVE_CLAUDE_BIN": str(env_bin)}
    assert find_claude_binary(env, configured=str(toml_bin)) == env_bin
    assert find_claude_binary({}, configured=str(toml_bin)) == toml_bin
    with pytest.raises(Unavailable, match="HIVE_CLAUDE_BIN"):
        find_claude_binary({"HIVE_CLAUDE_BIN": str(tmp_path / "missing")})
    with pytest.raises(Unavailable, match=r"\[defaults\] claude_bin"):
        find_claude_binary({}, configured=str(tmp_path / "missing"))


def test_the_bundled_cli() -> None:
    found = find_claude_binary({"PATH": ""})
    assert found.name == "claude"
    assert found.parent.name == "_bundled"
    assert os.access(found, os.X_OK)


def test_path_and_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(claudebin, "_bundled_binary", lambda: None)
    on_path = _exe(tmp_path / "claude")
    assert find_claude_binary({"PATH": str(tmp_path)}) == on_path
    with pytest.raises(Unavailable, match="no claude CLI found"):
        find_claude_binary({"PATH": str(tmp_path / "empty")})
    assert claude_binary_or_none({"PATH": str(tmp_path / "empty")}) is None


def test_the_bwrap_runtime_binds_the_binary_hive_claude_bin_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = _exe(tmp_path / "claude-real")
    link = tmp_path / "claude"
    link.symlink_to(target)
    monkeypatch.setenv("HIVE_CLAUDE_BIN", str(link))
    assert claude_binary() == target  # resolved: the file a sandbox can bind
    assert target in python_binds()


async def test_a_sandboxed_agent_is_handed_and_bound_the_configured_binary(
    short_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HIVE_CLAUDE_BIN", raising=False)
    binary = _exe(short_tmp / "claude-opt")
    config = HiveConfig(defaults=Defaults(runtime="external", claude_bin=str(binary)))
    async with build_hive(HivePaths(short_tmp / "h"), config) as hive:
        await hive.registry.register("alice", "agent", runtime="bwrap")
        spec = hive.lifecycle.spec("alice")
        assert spec.env["HIVE_CLAUDE_BIN"] == str(binary)
        assert (binary, binary) in spec.ro_binds
        await hive.registry.register("bob", "agent", runtime="process")
        spec = hive.lifecycle.spec("bob")
        assert spec.env["HIVE_CLAUDE_BIN"] == str(binary)
        assert (binary, binary) not in spec.ro_binds  # not sandboxed: nothing to bind
