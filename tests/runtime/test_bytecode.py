"""Byte-compiling the package for harnesses that cannot write .pyc files."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from hyperhive.runtime import bytecode


@pytest.fixture
def package(tmp_path: Path) -> Path:
    root = tmp_path / "pkg"
    (root / "sub").mkdir(parents=True)
    (root / "__init__.py").write_text("X = 1\n")
    (root / "sub" / "__init__.py").write_text("")
    (root / "sub" / "mod.py").write_text("def f() -> int:\n    return 2\n")
    (root / "broken.py").write_text("def f(:\n")  # mid-edit: skipped, the rest still compiled
    return root


def _pyc(source: Path) -> Path:
    return Path(importlib.util.cache_from_source(str(source)))


async def test_compiles_every_module_once_per_process(package: Path) -> None:
    await bytecode.compile_package(package)
    for source in (package / "__init__.py", package / "sub" / "mod.py"):
        assert _pyc(source).is_file()
    assert not _pyc(package / "broken.py").exists()

    pyc = _pyc(package / "sub" / "mod.py")
    pyc.unlink()
    await bytecode.compile_package(package)  # done already in this process: not even a look
    assert not pyc.exists()


async def test_a_package_it_cannot_write_is_left_alone(package: Path) -> None:
    (package / "__pycache__").write_text("")  # a file: no .pyc can be written (even by root)
    await bytecode.compile_package(package)  # no exception; the rest is still compiled
    assert _pyc(package / "sub" / "mod.py").is_file()
