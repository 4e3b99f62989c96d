"""`Inflight`: an effect whose caller was cancelled still runs to the end, and if it then fails
the log says so at WARNING (it was logged at DEBUG only: a silent swallow); an effect whose
caller sees the exception is not logged twice; the result and the error reach a caller that
stays, and closing waits for running effects (up to its timeout)."""

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


async def test_the_result_and_the_error_reach_the_caller() -> None:
    inflight = Inflight()

    async def value() -> int:
        return 3

    async def fails() -> None:
        raise ValueError("no")

    assert await inflight.run(value()) == 3
    with pytest.raises(ValueError, match="no"):
        await inflight.run(fails())
    await inflight.aclose()


async def test_an_effect_finishes_when_its_caller_is_cancelled() -> None:
    inflight = Inflight()
    started = asyncio.Event()
    release = asyncio.Event()
    effects: list[str] = []

    async def effect() -> None:
        started.set()
        await release.wait()
        effects.append("resolved")
        effects.append("notified")  # both halves, never only the first

    caller = asyncio.ensure_future(inflight.run(effect()))
    await asyncio.wait_for(started.wait(), 10)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert effects == []
    release.set()
    await asyncio.wait_for(inflight.aclose(), 10)  # waits for the orphaned effect
    assert effects == ["resolved", "notified"]


async def test_close_waits_for_running_effects_only_up_to_its_timeout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    inflight = Inflight()
    started = asyncio.Event()
    stuck = asyncio.Event()

    async def never() -> None:
        started.set()
        await stuck.wait()

    caller = asyncio.ensure_future(inflight.run(never()))
    await asyncio.wait_for(started.wait(), 10)
    with caplog.at_level(logging.WARNING, logger="hyperhive.core.deadlines"):
        await inflight.aclose(timeout=0.01)
    assert any("did not finish" in r.getMessage() for r in caplog.records)
    stuck.set()
    await asyncio.wait_for(caller, 10)
    await inflight.aclose()
