"""Reading an agent's captured output: only fixed files, never a caller-chosen path.

Invariant: `source` is one of a fixed set mapped to fixed file names in the agent's log dir,
the name is validated and must be a registered agent, and at most 5000 lines are returned.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path

from hyperhive.errors import BadRequest

SOURCES = {"harness": "harness.log", "sandbox": "slirp4netns.log"}
# the sandbox's own records, shown after its network helper's log (fixed names, never input)
SANDBOX_RECORDS = ("runtime.json", "status.json", "exit.json")
MAX_LINES = 5000


def tail_lines(path: Path, lines: int) -> list[str]:
    if not path.exists():
        return []
    with path.open("rb") as f:
        buf: deque[bytes] = deque(f, maxlen=lines)
    return [b.decode("utf-8", "replace").rstrip("\n") for b in buf]


def read_logs(log_dir: Path, source: str, lines: int) -> list[str]:
    if source not in SOURCES:
        raise BadRequest(f"log source must be one of {', '.join(SOURCES)}")
    lines = max(1, min(lines, MAX_LINES))
    path = log_dir / SOURCES[source]
    out = tail_lines(path, lines)
    if len(out) < lines:  # include the previous rotated file when the current one is short
        older = tail_lines(path.with_name(path.name + ".1"), lines - len(out))
        out = older + out
    if source == "sandbox":
        for name in SANDBOX_RECORDS:
            record = log_dir / name
            if record.exists():
                text = " ".join(record.read_text(errors="replace").split())
                out.append(f"{name}: {text}")
        out = out[-lines:]
    return out
