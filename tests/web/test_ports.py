"""Sticky web ports (fnv1a hash, collision probing, wrap, exhaustion)."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest

from hyperhive.web.ports import (
    PORT_BASE,
    PORT_SPAN,
    allocate_port,
    fnv1a_32,
    hash_port,
    read_port,
)


def nothing_in_use(port: int) -> bool:
    """For the allocation logic alone: ports held on this host by others do not count."""
    return False


def test_fnv1a_reference_values() -> None:
    assert fnv1a_32(b"") == 0x811C9DC5
    assert fnv1a_32(b"a") == 0xE40C292C
    assert fnv1a_32(b"foobar") == 0xBF9CF968


def _colliding_pair() -> tuple[str, str]:
    seen: dict[int, str] = {}
    for i in range(10000):
        name = f"agent-{i}"
        port = hash_port(name)
        if port in seen:
            return seen[port], name
        seen[port] = name
    raise AssertionError("no collision found")


def test_sticky_and_collision_free(tmp_path: Path) -> None:
    a, b = _colliding_pair()
    pa, pb = tmp_path / a / "port", tmp_path / b / "port"
    port_a = allocate_port(a, pa, {}, in_use=nothing_in_use)  # b does not exist yet
    assert port_a == hash_port(a) == hash_port(b)
    port_b = allocate_port(b, pb, {a: pa}, in_use=nothing_in_use)
    assert port_b == hash_port(a) + 1 or (
        port_b == PORT_BASE and port_a == PORT_BASE + PORT_SPAN - 1
    )
    assert read_port(pb) == port_b
    # sticky: even when the other agent goes away, b keeps its port
    assert allocate_port(b, pb, {}, in_use=nothing_in_use) == port_b


def test_others_hash_counts_when_they_have_no_file(tmp_path: Path) -> None:
    a, b = _colliding_pair()
    port_b = allocate_port(b, tmp_path / "b", {a: tmp_path / "missing"}, in_use=nothing_in_use)
    assert port_b != hash_port(a)


def test_probe_wraps_within_range(tmp_path: Path) -> None:
    name = next(f"w{i}" for i in range(100000) if hash_port(f"w{i}") == PORT_BASE + PORT_SPAN - 1)
    other = tmp_path / "other"
    other.write_text(f"{PORT_BASE + PORT_SPAN - 1}\n")
    assert (
        allocate_port(name, tmp_path / "mine", {"other": other}, in_use=nothing_in_use) == PORT_BASE
    )


def test_exhaustion_warns_and_returns_hash(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    others = {}
    for i in range(PORT_SPAN):
        f = tmp_path / f"o{i}"
        f.write_text(str(PORT_BASE + i))
        others[f"o{i}"] = f
    with caplog.at_level(logging.WARNING):
        assert allocate_port("late", tmp_path / "late", others, in_use=nothing_in_use) == hash_port(
            "late"
        )
    assert any(getattr(r, "action", "") == "port_exhausted" for r in caplog.records)
    assert not (tmp_path / "late").exists()


def test_a_port_held_outside_the_hive_is_skipped(tmp_path: Path) -> None:
    """Another hive on the host (or anything else) listens on the agent's hash port: the agent
    gets the next port nobody holds, not one it can never bind."""
    name = "manager"
    busy = socket.socket()
    try:
        busy.bind(("127.0.0.1", hash_port(name)))
        busy.listen(1)
    except OSError:
        pass  # already held by another hive on this machine: just as good
    try:
        port = allocate_port(name, tmp_path / "port", {})
    finally:
        busy.close()
    assert port != hash_port(name) and read_port(tmp_path / "port") == port
