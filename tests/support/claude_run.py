"""Running the real bundled `claude` CLI offline against a SimServer (used by the slow tests)."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hyperhive.sim import SimServer

try:
    import claude_agent_sdk

    CLAUDE: Path | None = Path(claude_agent_sdk.__file__).parent / "_bundled" / "claude"
except ImportError:  # pragma: no cover - a dependency of the package
    CLAUDE = None

CLI_TIMEOUT = 60.0


@dataclass
class ClaudeRun:
    returncode: int
    lines: list[dict[str, Any]]
    stderr: str

    @property
    def result(self) -> dict[str, Any]:
        results = [line for line in self.lines if line.get("type") == "result"]
        assert results, f"no result line (rc={self.returncode}); stderr: {self.stderr[-2000:]}"
        return results[-1]

    @property
    def session_id(self) -> str:
        return str(self.result["session_id"])

    def of(self, kind: str, subtype: str | None = None) -> list[dict[str, Any]]:
        return [
            line
            for line in self.lines
            if line.get("type") == kind and (subtype is None or line.get("subtype") == subtype)
        ]


RunClaude = Callable[..., Awaitable[ClaudeRun]]


def offline_env(base_url: str, home: Path) -> dict[str, str]:
    """The environment that keeps the CLI talking to nothing but `base_url` (claude-code.md)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CLAUDE"))}
    env.update(
        ANTHROPIC_BASE_URL=base_url,
        ANTHROPIC_API_KEY="x",
        HOME=str(home),
        CLAUDE_CONFIG_DIR=str(home / ".claude"),
        DISABLE_AUTOUPDATER="1",
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
        DISABLE_TELEMETRY="1",
        DISABLE_ERROR_REPORTING="1",
        CLAUDE_CODE_MAX_RETRIES="0",
        ENABLE_TOOL_SEARCH="false",
        MCP_CONNECTION_NONBLOCKING="false",
    )
    return env


async def run_claude(binary: Path, sim: SimServer, agent: str, home: Path, *args: str) -> ClaudeRun:
    """One `claude -p --output-format stream-json` run with `home` as HOME, cwd `home/work`."""
    (home / "work").mkdir(parents=True, exist_ok=True)
    proc = await asyncio.create_subprocess_exec(
        str(binary),
        "-p",
        "--output-format",
        "stream-json",
        "--verbose",
        "--model",
        "haiku",
        *args,
        cwd=home / "work",
        env=offline_env(sim.url_for(agent), home),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(CLI_TIMEOUT):
            out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    lines = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
    assert proc.returncode is not None
    return ClaudeRun(proc.returncode, lines, err.decode(errors="replace"))
