"""Byte-compiled hyperhive for harnesses that cannot write their own `.pyc` files.

A sandboxed harness sees the hyperhive package read-only. When the package has no current
`.pyc` files (an editable install whose harness modules nothing on the host ever imported, or a
host running with PYTHONDONTWRITEBYTECODE), every agent start compiles each module it imports
from source again: about 100 ms of CPU per start on the project's 2-CPU machine, most of the
harness's boot. So the core compiles the package once per process before it launches a
harness, as `pip install` does for a regular install.

Invariants:
- Best-effort and silent: a module that does not compile, or a package directory the core may
  not write (a system install, which its installer compiled already), is left as it is and
  Python compiles in memory as before.
- Timestamp-checked `.pyc` files, as Python writes them: one edited later is stale and ignored
  (and rewritten by the next process's pass), never run.
- Only hyperhive's own package: its dependencies' installers compile theirs.
- The compile runs in a child process (`python -m compileall`), never in a thread of the
  caller: CPython 3.11 can crash ("AST constructor recursion depth mismatch", or a segfault;
  gh-106905) when two threads of one process compile at once, and the core imports modules
  lazily while it serves.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from pathlib import Path

import hyperhive

logger = logging.getLogger(__name__)

PACKAGE = Path(hyperhive.__file__).parent

_lock: asyncio.Lock | None = None
_done: set[Path] = set()


async def compile_package(root: Path = PACKAGE) -> None:
    """Write missing or stale `.pyc` files under `root`, once per process, in a child process.
    A second caller waits for the first pass, then returns at once."""
    global _lock
    if root in _done:
        return
    if _lock is None:
        _lock = asyncio.Lock()
    async with _lock:
        if root in _done:
            return
        started = time.monotonic()
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "compileall",
                "-q",
                "-q",
                str(root),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            ok = await proc.wait() == 0
        except OSError:  # no interpreter to run: Python compiles in memory as before
            ok = False
        _done.add(root)
    logger.debug(
        "byte-compiled %s in %.0f ms%s",
        root,
        (time.monotonic() - started) * 1000,
        "" if ok else " (some modules were left to compile in memory)",
        extra={"action": "bytecode"},
    )
