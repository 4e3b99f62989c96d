"""The daemon's default assembly with the shipped fake runtime and a crash watch that ticks only
when poked (deterministic lifecycle tests)."""

from __future__ import annotations

from hyperhive.assembly import build_hive
from hyperhive.config import HiveConfig
from hyperhive.core.hive import Hive
from hyperhive.paths import HivePaths
from hyperhive.runtime.fake import FakeRuntime, FakeWorld


def fake_hive(
    paths: HivePaths, cfg: HiveConfig, world: FakeWorld, runtimes: list[FakeRuntime] | None = None
) -> Hive:
    """The default hive, its runtimes fakes in `world` (each made is appended to `runtimes`)."""

    def factory(name: str) -> FakeRuntime:
        rt = FakeRuntime(world)
        if runtimes is not None:
            runtimes.append(rt)
        return rt

    return build_hive(paths, cfg, runtime_factory=factory, crash_interval=3600)
