"""Record the stream-json captures the parser tests read (tests/harness/captures/*.jsonl).

Each capture is one run of the real bundled `claude` CLI (`claude -p --output-format
stream-json --verbose`), fully offline against a `hive sim` model server with a small scripted
scenario: its stdout lines, then one `{"dt": 0, "rc": EXIT_STATUS}` record (the format
tests/harness/test_stream.py's `load` reads). Regenerate after upgrading claude-agent-sdk:

    .venv/bin/python scripts/record_captures.py            # into tests/harness/captures/
    .venv/bin/python scripts/record_captures.py OUT_DIR

then run `.venv/bin/pytest tests/harness/test_stream_captures.py` (its assertions are about
the scenarios below, not about one CLI version's figures).
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hyperhive.sim import Scenario, SimServer  # noqa: E402
from tests.support.claude_run import CLAUDE, offline_env  # noqa: E402

OUT = REPO / "tests" / "harness" / "captures"
TIMEOUT = 90.0


@dataclass
class Capture:
    name: str
    prompt: str
    rules: list[dict[str, Any]] = field(default_factory=list)
    args: tuple[str, ...] = ()
    unreachable: bool = False  # point the CLI at a closed port instead of the sim
    interrupt: bool = False  # SIGINT once the model request is in flight


BASH = {"type": "tool_use", "name": "Bash", "input": {"command": "echo captured-output"}}
# not read-only, so the CLI asks for a permission -p mode cannot grant
MKDIR = {"type": "tool_use", "name": "Bash", "input": {"command": "mkdir made-by-the-model"}}
CAPTURES = [
    Capture("hello", "hello", [{"id": "hello", "text": "Hello from the sim."}]),
    Capture(
        "tools",
        "run it",
        [
            {
                "id": "think-and-run",
                "when_user_contains": "run it",
                "reply": [{"type": "thinking", "thinking": "I should run it."}, BASH],
            },
            {"id": "after", "when_tool_result_for": "Bash", "text": "It printed the output."},
        ],
        args=("--allowedTools", "Bash"),
    ),
    Capture(
        "denied",
        "run it",
        [
            {"id": "run", "when_user_contains": "run it", "reply": [MKDIR]},
            {"id": "after", "when_tool_result_for": "Bash", "text": "I was not allowed."},
        ],
    ),
    Capture(
        "err_429",
        "hello",
        [{"id": "busy", "error": {"status": 429, "message": "Number of requests exceeded"}}],
    ),
    Capture(
        "err_401",
        "hello",
        [{"id": "nokey", "error": {"status": 401, "message": "invalid x-api-key"}}],
    ),
    Capture(
        "err_too_long",
        "hello",
        [
            {
                "id": "long",
                "error": {
                    "status": 400,
                    "message": "prompt is too long: 250000 tokens > 200000 maximum",
                },
            }
        ],
    ),
    Capture(
        "max_turns",
        "run it",
        [{"id": "again", "when_kind": "main", "reply": [BASH]}],
        args=("--allowedTools", "Bash", "--max-turns", "1"),
    ),
    Capture("err_unreachable", "hello", unreachable=True),
    Capture(
        "sigint",
        "hello",
        [{"id": "slow", "text": "This answer takes a long time. " * 20, "chunk_delay_ms": 2000}],
        interrupt=True,
    ),
]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def record(capture: Capture, home: Path) -> list[dict[str, Any]]:
    assert CLAUDE is not None and CLAUDE.exists(), "the bundled claude CLI is not installed"
    scenario = Scenario.model_validate({"rules": capture.rules})
    async with SimServer(scenario) as sim:
        base = (
            f"http://127.0.0.1:{_closed_port()}/a/alice"
            if capture.unreachable
            else sim.url_for("alice")
        )
        (home / "work").mkdir(parents=True, exist_ok=True)
        proc = await asyncio.create_subprocess_exec(
            str(CLAUDE),
            "-p",
            "--output-format",
            "stream-json",
            "--verbose",
            "--model",
            "haiku",
            *capture.args,
            "--",
            capture.prompt,
            cwd=home / "work",
            env=offline_env(base, home),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            async with asyncio.timeout(TIMEOUT):
                if capture.interrupt:
                    await sim.wait_for_request(timeout=TIMEOUT)
                    proc.send_signal(signal.SIGINT)
                out, _err = await proc.communicate()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    lines = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
    return [*lines, {"dt": 0, "rc": proc.returncode}]


async def record_all() -> dict[str, list[dict[str, Any]]]:
    recorded = {}
    for capture in CAPTURES:
        with tempfile.TemporaryDirectory(prefix="hhcap") as tmp:
            recorded[capture.name] = await record(capture, Path(tmp))
    return recorded


def main(out: Path) -> None:
    recorded = asyncio.run(record_all())
    out.mkdir(parents=True, exist_ok=True)
    for name, records in recorded.items():
        path = out / f"{name}.jsonl"
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
        print(f"{path}: {len(records) - 1} lines, rc {records[-1]['rc']}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT)
