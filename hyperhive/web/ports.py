"""Sticky per-agent web ports (binding one: `hyperhive.netio.bind_with_retry`).

Invariants:
- An agent's port is stored in its port file (`HivePaths.port_file(name)`) on first allocation
  and never changes afterwards (bookmarks keep working).
- The first allocation is `8100 + fnv1a_32(name) % 900`, probing forward (wrapping inside
  8100..8999) past every port another agent holds (its port file, else its hash) and every
  port something on the host listens on (another hive's agents: a probe bind). When all 900
  are held a warning is logged and the bare hash is returned (not stored, so a later call can
  still find a free port).
"""

from __future__ import annotations

import errno
import logging
import os
import socket
from collections.abc import Callable, Mapping
from pathlib import Path

logger = logging.getLogger(__name__)

PORT_BASE = 8100
PORT_SPAN = 900  # 8100..8999

FNV_OFFSET = 0x811C9DC5
FNV_PRIME = 0x01000193


def fnv1a_32(data: bytes) -> int:
    h = FNV_OFFSET
    for byte in data:
        h ^= byte
        h = (h * FNV_PRIME) & 0xFFFFFFFF
    return h


def hash_port(name: str) -> int:
    """The port an agent would get if nobody else held it."""
    return PORT_BASE + fnv1a_32(name.encode()) % PORT_SPAN


def read_port(port_file: Path) -> int | None:
    """The port stored in `port_file`, or None when absent or not a port in range."""
    try:
        text = port_file.read_text().strip()
    except OSError:
        return None
    if not text.isdigit():
        return None
    port = int(text)
    return port if PORT_BASE <= port < PORT_BASE + PORT_SPAN else None


def held_port(name: str, port_file: Path) -> int:
    """What another agent holds: its stored port, else its hash."""
    stored = read_port(port_file)
    return stored if stored is not None else hash_port(name)


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True if something on this host listens on (host, port): a probe bind, released at once.
    SO_REUSEADDR as the real bind has it, so a socket lingering in TIME_WAIT counts as free."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def allocate_port(
    name: str,
    port_file: Path,
    others: Mapping[str, Path],
    *,
    in_use: Callable[[int], bool] = port_in_use,
) -> int:
    """The agent's sticky web port. `others` maps every other agent's name to its port file;
    `in_use` says whether something outside this hive (another hive on the host) holds a
    port, which is then skipped too."""
    stored = read_port(port_file)
    if stored is not None:
        return stored
    held = {held_port(other, pf) for other, pf in others.items() if other != name}
    first = hash_port(name)
    for step in range(PORT_SPAN):
        port = PORT_BASE + (first - PORT_BASE + step) % PORT_SPAN
        if port not in held and not in_use(port):
            port_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = port_file.with_name(port_file.name + ".tmp")
            tmp.write_text(f"{port}\n")
            os.replace(tmp, port_file)
            logger.info(
                "web port %d for %s",
                port,
                name,
                extra={"action": "port_allocate", "agent": name, "port": port},
            )
            return port
    logger.warning(
        "all %d web ports are held; %s falls back to its hash port %d",
        PORT_SPAN,
        name,
        first,
        extra={"action": "port_exhausted", "agent": name, "port": first},
    )
    return first
