"""Who on this machine may reach the hive: the modes and owners of the hive home and of
`host.sock` (`[access] group` in hive.toml).

Invariants:
- Without a group the hive home is 0700: no other local user can even traverse to a socket
  under it, whatever the socket's own mode. With a group it is 0750 and that group's, and
  `host.sock` is 0660 and that group's (members drive the hive as the operator); without one
  `host.sock` is 0600.
- Agents never use these paths: their sandboxes get their own socket directory, state and
  `/shared` by bind mounts made before the sandbox drops to the agent's uid, so a closed home
  costs them nothing. An agent's `hive.sock` and `web.sock` are 0600 and its own.
"""

from __future__ import annotations

import grp
import logging
import os
from pathlib import Path

from hyperhive.errors import ConfigError

logger = logging.getLogger(__name__)

HOME_MODE = 0o700
GROUP_HOME_MODE = 0o750
HOST_SOCK_MODE = 0o600
GROUP_HOST_SOCK_MODE = 0o660


def group_id(group: str) -> int | None:
    """The gid of `[access] group` (None when unset); an unknown group is a `ConfigError`."""
    if not group:
        return None
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise ConfigError(f"access.group: no unix group named {group!r}") from None


def secure_home(home: Path, group: str) -> int | None:
    """Close the hive home to other local users (see the module docstring); the gid of the
    operator's group, if one is configured."""
    gid = group_id(group)
    if gid is None:
        os.chmod(home, HOME_MODE)
    else:
        os.chown(home, -1, gid)
        os.chmod(home, GROUP_HOME_MODE)
    logger.debug(
        "hive home %s is %o",
        home,
        HOME_MODE if gid is None else GROUP_HOME_MODE,
        extra={"action": "home_secured", "agent": None},
    )
    return gid


def secure_host_sock(path: Path, gid: int | None) -> None:
    """`host.sock`: the owner's only, or also `gid`'s."""
    if gid is None:
        os.chmod(path, HOST_SOCK_MODE)
    else:
        os.chown(path, -1, gid)
        os.chmod(path, GROUP_HOST_SOCK_MODE)
