"""A real core on an event loop of its own, in a thread, for tests that drive it with blocking
calls (hypothesis and schemathesis run synchronously): `with hive_in_thread(...) as hive`.

Only the core's thread touches the hive; the test reads plain attributes (paths, URLs, the
verb registries) and talks to it over its sockets and HTTP, as a client would."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from hyperhive.assembly import build_hive
from hyperhive.config import HiveConfig
from hyperhive.core.hive import Hive
from hyperhive.paths import HivePaths


@contextlib.contextmanager
def hive_in_thread(
    paths: HivePaths,
    config: HiveConfig,
    build: Callable[[HivePaths, HiveConfig], Hive] = build_hive,
    setup: Callable[[Hive], Awaitable[None]] | None = None,
) -> Iterator[Hive]:
    ready = threading.Event()
    box: dict[str, Any] = {}

    async def run() -> None:
        stop = asyncio.Event()
        box["stop"] = (asyncio.get_running_loop(), stop)
        async with build(paths, config) as hive:
            if setup is not None:
                await setup(hive)
            box["hive"] = hive
            ready.set()
            await stop.wait()

    def main() -> None:
        try:
            asyncio.run(run())
        except BaseException as exc:
            box["error"] = exc
        finally:
            ready.set()

    thread = threading.Thread(target=main, name="threaded-core", daemon=True)
    thread.start()
    assert ready.wait(60), "the core did not start"
    if "hive" not in box:
        raise AssertionError(f"the core failed to start: {box.get('error')!r}")
    try:
        yield box["hive"]
    finally:
        loop, stop = box["stop"]
        loop.call_soon_threadsafe(stop.set)
        thread.join(60)
        assert not thread.is_alive(), "the core did not stop"
        if "error" in box:
            raise AssertionError(f"the core failed: {box['error']!r}")
