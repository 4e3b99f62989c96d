"""Runtime selection, the sandbox probe, and the in-memory / external backends."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from hyperhive.errors import ConfigError, Conflict, NotFound
from hyperhive.runtime.base import LaunchSpec
from hyperhive.runtime.choose import (
    available_runtimes,
    default_runtime_name,
    make_runtime,
    sandbox_support,
)
from hyperhive.runtime.external import ExternalRuntime
from hyperhive.runtime.fake import FakeRuntime, FakeWorld


def _spec(name: str = "alpha") -> LaunchSpec:
    p = Path("/nonexistent")
    return LaunchSpec(name, ["harness"], p, p, p, p, config_rev="r1")


def test_probe_and_default_agree() -> None:
    why = sandbox_support()
    if why is not None:
        print(f"sandbox probe: {why}")
    assert (default_runtime_name() == "bwrap") == (why is None)
    assert ("bwrap" in available_runtimes()) == (why is None)
    assert {"process", "external", "fake"} <= set(available_runtimes())


def test_make_runtime() -> None:
    assert isinstance(make_runtime("fake"), FakeRuntime)
    assert isinstance(make_runtime("external"), ExternalRuntime)
    assert make_runtime("process").name == "process"
    with pytest.raises(ConfigError, match="unknown runtime"):
        make_runtime("docker")


async def test_fake_runtime_lifecycle() -> None:
    world = FakeWorld()
    rt = FakeRuntime(world)
    st = await rt.start(_spec())
    assert st.running and st.pid and st.config_rev == "r1"
    with pytest.raises(Conflict):
        await rt.start(_spec())
    waiter = asyncio.create_task(rt.wait("alpha"))
    rt.exit("alpha", 3)
    assert await waiter == 3
    assert (await rt.status("alpha")).exit_code == 3
    assert not (await rt.status("nobody")).running
    await rt.start(_spec())
    # a "restarted daemon" sharing the world adopts instead of starting a duplicate
    fresh = FakeRuntime(world)
    assert (await fresh.adopt(_spec())).running
    assert (await fresh.stop("alpha")).exit_code == 143
    assert rt.calls[:2] == [("start", "alpha"), ("start", "alpha")]
    with pytest.raises(NotFound):
        rt.exit("alpha")


async def test_fake_stop_falls_back_to_kill() -> None:
    rt = FakeRuntime(ignore_sigterm=True)
    await rt.start(_spec())
    assert (await rt.stop("alpha", timeout=0.1)).exit_code == 137


async def test_external_runtime_is_a_no_op() -> None:
    async with ExternalRuntime() as rt:
        st = await rt.start(_spec())
        assert not st.running and st.pid is None and st.config_rev == "r1"
        assert not (await rt.stop("alpha")).running
        assert not (await rt.kill("alpha")).running
        assert not (await rt.adopt(_spec())).running
        with pytest.raises(NotFound):
            await rt.wait("alpha")
