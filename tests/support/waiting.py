"""Waiting in tests: the one polling helper. Poll a condition (sync or async) with a deadline,
never a fixed sleep; the deadline guards against a hang, it is not a timing assertion.
`eventually` in async code, `eventually_sync` in code that is not (subprocess helpers)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable


async def eventually(
    pred: Callable[[], object], timeout: float = 10.0, what: str = "condition"
) -> object:
    """Return `pred()`'s first truthy value (awaited when it is a coroutine); fail after
    `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.005)


def eventually_sync(
    pred: Callable[[], object], timeout: float = 10.0, what: str = "condition"
) -> object:
    """`eventually` outside an event loop: `pred()`'s first truthy value; fail after `timeout`
    seconds (an exception `pred` raises ends the wait at once)."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)
