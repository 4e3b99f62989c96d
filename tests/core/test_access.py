"""Who can reach a hive's sockets on the machine (`docs/security.md`, the operator's
surfaces): the hive home is 0700 (0750 with `[access] group`), `host.sock` 0600 (0660 and the
group's with `[access] group`), an agent's `web.sock` 0600. Each check runs a real client as
another uid (`setpriv`), so it needs root."""

from __future__ import annotations

import grp
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from hyperhive.assembly import build_hive
from hyperhive.config import Access, HiveConfig
from hyperhive.errors import ConfigError
from hyperhive.harness.main import bind_unix
from hyperhive.paths import HivePaths

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="runs a client as another uid")

NOBODY = 65534
CONNECT = """
import socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
except PermissionError:
    print("denied")
else:
    print("connected")
"""


def connect_as(path: Path, uid: int = NOBODY, gid: int = NOBODY) -> str:
    """'connected' or 'denied': a connect to `path` by a process of `uid`/`gid` only."""
    argv = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups"]
    argv += ["/usr/bin/python3", "-c", CONNECT, str(path)]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=True)
    return out.stdout.strip()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def nogroup() -> Iterator[str]:
    yield grp.getgrgid(NOBODY).gr_name


@pytest.fixture(autouse=True)
def open_parent(paths: HivePaths) -> None:
    """The temp dir above the home is 0700 (mkdtemp): open it, so only the hive's own modes
    stand between the other uid and the sockets."""
    paths.home.parent.chmod(0o755)


async def test_another_user_reaches_no_socket(paths: HivePaths, hive_config: HiveConfig) -> None:
    """Issue #12: web.sock was 0666 in 0755 dirs under a 0755 home: any local user could post
    as the agent, read its inbox and cancel its turns."""
    async with build_hive(paths, hive_config) as hive:
        await hive.spawn("alice")
        web = bind_unix(paths.web_sock("alice"))  # as the harness binds it
        try:
            assert mode(paths.home) == 0o700
            assert mode(paths.web_sock("alice")) == 0o600
            assert mode(paths.host_sock) == 0o600
            for sock in (paths.web_sock("alice"), paths.agent_sock("alice"), paths.host_sock):
                assert connect_as(sock) == "denied", sock
            assert connect_as(paths.host_sock, 0, 0) == "connected"  # the control
        finally:
            web.close()


async def test_a_group_the_operator_chooses_reaches_host_sock_only(
    paths: HivePaths, hive_config: HiveConfig, nogroup: str
) -> None:
    config = hive_config.model_copy(update={"access": Access(group=nogroup)})
    async with build_hive(paths, config) as hive:
        await hive.spawn("alice")
        web = bind_unix(paths.web_sock("alice"))
        try:
            assert mode(paths.home) == 0o750 and paths.home.stat().st_gid == NOBODY
            assert mode(paths.host_sock) == 0o660 and paths.host_sock.stat().st_gid == NOBODY
            assert connect_as(paths.host_sock) == "connected"
            assert connect_as(paths.web_sock("alice")) == "denied"
            assert connect_as(paths.agent_sock("alice")) == "denied"
            assert connect_as(paths.host_sock, 4242, 4242) == "denied"  # not in the group
        finally:
            web.close()


async def test_an_unknown_group_is_a_config_error(
    paths: HivePaths, hive_config: HiveConfig
) -> None:
    config = hive_config.model_copy(update={"access": Access(group="no-such-group-hh")})
    with pytest.raises(ConfigError, match=r"access\.group"):
        async with build_hive(paths, config):
            pass
