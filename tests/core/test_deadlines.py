"""`Inflight`: an effect whose caller was cancelled still runs to the end, and if it then fails
the log says so at WARNING (it was logged at DEBUG only: a silent swallow); an effect whose
caller sees the exception is not logged twice."""

from __future__ import annotations

import asyncio
import logging

import pytest

from hyperhive.core.deadlines import Inflight


async def test_an_orphaned_effect_that_fails_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    inflight = Inflight()
    go = asyncio.Event()

    async def effect() -> None:
        await go.wait()
        raise RuntimeError("the notify failed")

    caller = asyncio.ensure_future(inflight.run(effect()))
    await asyncio.sleep(0)  # the effect is running, waiting for `go`
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    with caplog.at_level(logging.DEBUG, logger="hyperhive.core.deadlines"):
        go.set()
        await inflight.aclose()
    (record,) = [r for r in caplog.records if getattr(r, "action", "") == "inflight_failed"]
    assert record.levelno == logging.WARNING and "the notify failed" in record.getMessage()


async def test_a_failure_the_caller_sees_is_not_logged_as_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    inflight = Inflight()

    async def effect() -> None:
        raise RuntimeError("seen by the caller")

    with caplog.at_level(logging.DEBUG, logger="hyperhive.core.deadlines"):
        with pytest.raises(RuntimeError):
            await inflight.run(effect())
        await inflight.aclose()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
