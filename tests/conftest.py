"""Shared fixtures: short temp dirs (unix socket paths stay under 108 bytes) and a real hive."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from hyperhive.assembly import build_hive
from hyperhive.clock import Clock, ManualClock
from hyperhive.config import Defaults, HiveConfig
from hyperhive.core.hive import Hive
from hyperhive.paths import HivePaths

pytest_plugins = ["tests.support.postgres"]  # pg_cluster / pg_url: a throwaway cluster

# every test hive (and `hive serve` children, which inherit this) picks a free dashboard port
os.environ.setdefault("HIVE_DASHBOARD", "127.0.0.1:0")


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(dir="/tmp", prefix="hh"))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def paths(short_tmp: Path) -> HivePaths:
    return HivePaths(short_tmp / "h")


@pytest.fixture
def hive_config() -> HiveConfig:
    """Core tests run agents on the `external` runtime (nothing launched); sandbox and
    end-to-end tests override this."""
    return HiveConfig(defaults=Defaults(runtime="external"))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def manual_clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def hive(paths: HivePaths, hive_config: HiveConfig, clock: Clock) -> AsyncIterator[Hive]:
    """A real core (sqlite, sockets, default features) in a short temp dir."""
    async with build_hive(paths, hive_config, clock=clock) as h:
        yield h
