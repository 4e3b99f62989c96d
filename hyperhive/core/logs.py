"""Reading an agent's captured output: only fixed files, never a caller-chosen path.

Invariant: `source` is one of a fixed set mapped to fixed file names in the agent's log dir,
the name is validated and must be a registered agent, and at most 5000 lines are returned.
Files are opened without following links and only when regular (`safefs`): the log dir is
the core's, but what the agent's output and records hold is not trusted.
"""

from __future__ import annotations

import os
import stat
from collections import deque
from pathlib import Path

from hyperhive import safefs
from hyperhive.errors import BadRequest

SOURCES = {"harness": "harness.log", "sandbox": "slirp4netns.log"}
# the sandbox's own records, shown after its network helper's log (fixed names, never input)
SANDBOX_RECORDS = ("runtime.json", "status.json", "exit.json")
MAX_LINES = 5000


def tail_lines(path: Path, lines: int) -> list[str]:
    """The last `lines` lines of a regular file (a link or fifo there reads as empty)."""
    try:
        fd = safefs.open_under(path.parent, path.name)
    except OSError:
        return []
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return []
        os.set_blocking(fd, True)
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
            raw = safefs.read_bytes(log_dir, name, 64 << 10)
            if raw is not None:
                text = " ".join(raw.decode(errors="replace").split())
                out.append(f"{name}: {text}")
        out = out[-lines:]
    return out
