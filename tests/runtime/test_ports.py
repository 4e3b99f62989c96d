"""Sticky web ports (fnv1a hash, collision probing, wrap, exhaustion) and bind_with_retry."""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path

import pytest

from hyperhive.errors import Unavailable
from hyperhive.runtime.ports import (
    PORT_BASE,
    PORT_SPAN,
    allocate_port,
    bind_with_retry,
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


async def test_bind_with_retry_waits_for_the_port() -> None:
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    port = blocker.getsockname()[1]
    loop = asyncio.get_running_loop()
    loop.call_later(0.05, blocker.close)  # the old owner goes away while we retry
    sock = await bind_with_retry("127.0.0.1", port, first_delay=0.02, tries=12)
    try:
        assert sock.getsockname()[1] == port
        server = await asyncio.start_server(lambda r, w: w.close(), sock=sock)
        server.close()
        await server.wait_closed()
    finally:
        sock.close()


async def test_bind_with_retry_gives_up() -> None:
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    try:
        with pytest.raises(Unavailable, match="still in use after 3 tries"):
            await bind_with_retry("127.0.0.1", blocker.getsockname()[1], tries=3, first_delay=0.01)
    finally:
        blocker.close()


async def test_other_bind_errors_fail_at_once() -> None:
    with pytest.raises(Unavailable, match="cannot listen"):
        # TEST-NET address: not local, EADDRNOTAVAIL (nothing is sent)
        await bind_with_retry("192.0.2.1", 8100, tries=12, first_delay=10)


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
