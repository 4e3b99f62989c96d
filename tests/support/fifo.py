"""A fifo a sandboxed test program blocks on until the test lets it go on."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path


def fifo(path: Path, uid: int | None) -> Path:
    os.mkfifo(path, 0o600)
    if uid is not None:
        os.chown(path, uid, uid)
    return path


async def release(path: Path) -> None:
    """Open the fifo the sandboxed program blocks on, and close it (EOF = go on)."""

    def go() -> None:
        fd = os.open(path, os.O_WRONLY)
        os.close(fd)

    await asyncio.to_thread(go)
