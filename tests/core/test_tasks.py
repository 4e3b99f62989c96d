"""`Supervisor` on its own: restart with backoff, the critical path, cancel and close."""

from __future__ import annotations

import asyncio
import logging

import pytest

from hyperhive.core.tasks import Supervisor


class Boom(Exception):
    pass


async def test_a_restartable_task_that_dies_runs_again() -> None:
    calls = 0
    second = asyncio.Event()

    async def flaky() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise Boom("first run dies")
        second.set()
        await asyncio.Event().wait()

    async with Supervisor("t") as sup:
        sup.spawn("flaky", flaky, restart=True, max_backoff=0.01)  # no real half-second wait
        await asyncio.wait_for(second.wait(), 10)
        assert calls == 2
        assert sup.names() == ["flaky"]
        assert not sup.failed.is_set()


async def test_a_critical_task_that_dies_fails_the_supervisor(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def dies() -> None:
        raise Boom("gone")

    async with Supervisor("t") as sup:
        with caplog.at_level(logging.ERROR, logger="hyperhive.core.tasks"):
            task = sup.spawn("dies", dies)
            await asyncio.wait_for(sup.failed.wait(), 10)
        assert isinstance(sup.failure, Boom)
        with pytest.raises(Boom):
            await task
        assert sup.names() == []
    assert any(getattr(r, "action", None) == "task_died" for r in caplog.records)


async def test_a_non_critical_task_that_dies_does_not_fail_the_supervisor() -> None:
    async def dies() -> None:
        raise Boom("gone")

    async with Supervisor("t") as sup:
        task = sup.spawn("dies", dies, critical=False)
        with pytest.raises(Boom):
            await task
        assert not sup.failed.is_set()
        assert sup.failure is None


async def test_a_task_that_returns_is_forgotten_and_its_name_reusable() -> None:
    async def quick() -> int:
        return 7

    async with Supervisor("t") as sup:
        assert await sup.spawn("job", quick) == 7
        assert sup.names() == []
        assert await sup.spawn("job", quick) == 7


async def test_a_running_name_cannot_be_spawned_twice() -> None:
    async with Supervisor("t") as sup:
        sup.spawn("job", asyncio.Event().wait)
        with pytest.raises(RuntimeError, match="already running"):
            sup.spawn("job", asyncio.Event().wait)


async def test_cancel_stops_one_task_and_leaves_the_others() -> None:
    async with Supervisor("t") as sup:
        a = sup.spawn("a", asyncio.Event().wait)
        sup.spawn("b", asyncio.Event().wait)
        await sup.cancel("a")
        assert a.cancelled()
        assert sup.names() == ["b"]
        await sup.cancel("missing")  # unknown names are ignored
        assert not sup.failed.is_set()


async def test_close_cancels_everything_and_an_error_while_closing_is_no_failure() -> None:
    started = asyncio.Event()
    stopping = asyncio.Event()

    async def raises_on_cancel() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            stopping.set()
            raise Boom("while closing") from None

    sup = Supervisor("t")
    waiter = sup.spawn("waiter", asyncio.Event().wait)
    noisy = sup.spawn("noisy", raises_on_cancel)
    await asyncio.wait_for(started.wait(), 10)
    await sup.aclose()
    await sup.aclose()  # idempotent
    assert waiter.cancelled()
    assert stopping.is_set()
    assert noisy.done()
    assert not sup.failed.is_set()


async def test_the_restart_backoff_doubles_and_never_exceeds_its_cap() -> None:
    waits: list[float] = []
    done = asyncio.Event()

    async def record(seconds: float) -> None:
        waits.append(seconds)

    calls = 0

    async def dies_five_times() -> None:
        nonlocal calls
        calls += 1
        if calls <= 5:
            raise Boom(f"run {calls}")
        done.set()

    async with Supervisor("t", sleep=record) as sup:
        sup.spawn("flaky", dies_five_times, restart=True, max_backoff=2.0)
        await asyncio.wait_for(done.wait(), 10)
        capped = Supervisor("c", sleep=record)
        calls = 4  # one more death, then it runs
        done.clear()
        capped.spawn("small", dies_five_times, restart=True, max_backoff=0.1)
        await asyncio.wait_for(done.wait(), 10)
        await capped.aclose()
    assert waits == [0.5, 1.0, 2.0, 2.0, 2.0, 0.1]  # the first wait too stays under the cap
