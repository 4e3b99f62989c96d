"""Fixtures for the sim tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from hyperhive.sim import SimServer
from tests.support.claude_run import CLAUDE, ClaudeRun, RunClaude
from tests.support.claude_run import run_claude as _run


@pytest.fixture
def claude_bin() -> Path:
    """The bundled `claude` binary (the test is skipped without it)."""
    if CLAUDE is None or not CLAUDE.exists():
        pytest.skip("the bundled claude CLI is not installed")
    return CLAUDE


@pytest.fixture
def run_claude(claude_bin: Path, tmp_path: Path) -> RunClaude:
    """`await run_claude(sim, agent, *args)`: one `claude -p` run, HOME per agent in tmp_path."""

    async def run(sim: SimServer, agent: str, *args: str) -> ClaudeRun:
        return await _run(claude_bin, sim, agent, tmp_path / f"home-{agent}", *args)

    return run
