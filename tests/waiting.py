"""Waiting in tests: poll a condition with a deadline (never a fixed sleep)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


async def eventually(
    pred: Callable[[], object], timeout: float = 10.0, what: str = "condition"
) -> None:
    """Return as soon as `pred()` is truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.005)
