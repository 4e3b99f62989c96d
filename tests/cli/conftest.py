"""Fixtures for CLI tests: a real `hive serve` daemon per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.daemon import DaemonProcess


@pytest.fixture
def daemon(short_tmp: Path) -> Iterator[DaemonProcess]:
    d = DaemonProcess(short_tmp / "h").start()
    try:
        yield d
    finally:
        d.stop()
