"""Agent names: the single validation point that keeps names safe to use as path components.

Invariant: every name that reaches the filesystem, a socket path, a cgroup or a unix account has
passed `validate_name` — `[a-z0-9-]`, 1 to 63 characters, not starting with `-` — so `..`, `/`,
upper case and empty names can never appear, and no name reads as an option to a command it
is passed to (`useradd`, `git`, `setpriv`, `ip netns`). `operator`, `system` and `*` are reserved addresses, never agents.
"""

from __future__ import annotations

import re

from hyperhive.errors import InvalidName

NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
NAME_RE = re.compile(NAME_PATTERN)
OPERATOR = "operator"
SYSTEM = "system"
BROADCAST = "*"
RESERVED = frozenset({OPERATOR, SYSTEM, "all", "host", "core"})


def validate_name(name: object) -> str:
    """Return `name` if it is a valid agent name, else raise `InvalidName` saying why."""
    if not isinstance(name, str):
        raise InvalidName(f"agent name must be a string, got {type(name).__name__}")
    if not NAME_RE.fullmatch(name):  # `$` alone would let "name\n" through
        shown = name if len(name) <= 80 else name[:77] + "..."
        raise InvalidName(
            f"invalid agent name {shown!r}: use 1-63 characters of a-z, 0-9 and '-', "
            "not starting with '-'"
        )
    return name


def validate_new_name(name: object) -> str:
    """Like `validate_name`, and also refuse the reserved addresses."""
    checked = validate_name(name)
    if checked in RESERVED:
        raise InvalidName(f"{checked!r} is reserved and cannot be an agent name")
    return checked
