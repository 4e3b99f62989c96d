"""The daemon's default features with the shipped fake runtime and a crash watch that ticks only
when poked (deterministic lifecycle tests)."""

from __future__ import annotations

from typing import Any

from hyperhive.core.crashwatch import CrashWatch
from hyperhive.core.features import default_features
from hyperhive.core.lifecycle import Lifecycle
from hyperhive.runtime.fake import FakeRuntime, FakeWorld


def features(world: FakeWorld, runtimes: list[FakeRuntime]) -> list[Any]:
    def factory(name: str) -> FakeRuntime:
        rt = FakeRuntime(world)
        runtimes.append(rt)
        return rt

    out: list[Any] = []
    for f in default_features():
        if isinstance(f, Lifecycle):
            f = Lifecycle(runtime_factory=factory)
        elif isinstance(f, CrashWatch):
            f = CrashWatch(interval=3600)  # ticks only when poked: deterministic
        out.append(f)
    return out
