"""The state root (`HIVE_HOME`) and every path derived from it.

One resolver for the whole project: nothing else joins paths under the hive home by hand. Agent
paths take a name that has passed `validate_name`, so no path here can escape the home.

Layout:
    DIR/hive.toml                      hive config
    DIR/hive.sqlite                    broker database (messages, agents, questions, ...)
    DIR/run/host.sock                  host admin socket (0660, dir 0751)
    DIR/run/agents/<name>/             the agent's socket dir, /run/hive inside (root's, 0755:
                                       the agent can neither remove nor squat the core's sockets)
    DIR/run/agents/<name>/hive.sock    the agent's own socket (identity = socket)
    DIR/run/agents/<name>/model.sock   its model socket (core's model proxy)
    DIR/run/agents/<name>/web/web.sock the agent's web page (served by its harness; web/ is the
                                       agent's own directory)
    DIR/agents/<name>/state/           the agent's /state (notes, claude session, event stores)
    DIR/configs/<name>/                proposed config repo (git); bound at /agents in the
                                       manager's sandbox, so repos made while it runs appear
    DIR/agents/<name>/config           -> ../../configs/<name> (the documented place)
    DIR/agents/<name>/logs/            harness + sandbox logs, exit status
    DIR/agents/<name>/port             sticky web port
    DIR/applied/<name>/                applied config checkout
    DIR/shared/                        /shared, common to all agents
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from hyperhive.names import validate_name

SUN_PATH_MAX = 107
WEB_DIR = "web"  # in the agent's socket dir: the one directory there the agent may write
WEB_SOCK = "web.sock"  # sockaddr_un.sun_path is 108 bytes including the NUL


def default_home() -> Path:
    """`HIVE_HOME`, else `/var/lib/hyperhive` for root, else `~/.local/share/hyperhive`."""
    env = os.environ.get("HIVE_HOME")
    if env:
        return Path(env)
    if os.geteuid() == 0:
        return Path("/var/lib/hyperhive")
    return Path.home() / ".local" / "share" / "hyperhive"


@dataclass(frozen=True)
class HivePaths:
    """Every path under one hive home."""

    home: Path

    @classmethod
    def resolve(cls, home: str | os.PathLike[str] | None = None) -> HivePaths:
        return cls(Path(home).expanduser().absolute() if home else default_home().absolute())

    @property
    def config_file(self) -> Path:
        return self.home / "hive.toml"

    @property
    def db_file(self) -> Path:
        return self.home / "hive.sqlite"

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def host_sock(self) -> Path:
        return self.run_dir / "host.sock"

    @property
    def agents_run_dir(self) -> Path:
        return self.run_dir / "agents"

    @property
    def agents_dir(self) -> Path:
        return self.home / "agents"

    @property
    def applied_root(self) -> Path:
        return self.home / "applied"

    @property
    def shared_dir(self) -> Path:
        return self.home / "shared"

    def sock_dir(self, name: str) -> Path:
        return self.agents_run_dir / validate_name(name)

    def agent_sock(self, name: str) -> Path:
        return self.sock_dir(name) / "hive.sock"

    def web_dir(self, name: str) -> Path:
        return self.sock_dir(name) / WEB_DIR

    def web_sock(self, name: str) -> Path:
        return self.web_dir(name) / WEB_SOCK

    def agent_dir(self, name: str) -> Path:
        return self.agents_dir / validate_name(name)

    def state_dir(self, name: str) -> Path:
        return self.agent_dir(name) / "state"

    @property
    def configs_root(self) -> Path:
        return self.home / "configs"

    def config_repo(self, name: str) -> Path:
        """The real location of the proposed config repo."""
        return self.configs_root / validate_name(name)

    def config_link(self, name: str) -> Path:
        """`agents/<name>/config`: a relative symlink to `config_repo(name)`."""
        return self.agent_dir(name) / "config"

    def logs_dir(self, name: str) -> Path:
        return self.agent_dir(name) / "logs"

    def port_file(self, name: str) -> Path:
        return self.agent_dir(name) / "port"

    def applied_dir(self, name: str) -> Path:
        return self.applied_root / validate_name(name)


def check_socket_path(path: Path) -> Path:
    """Raise a clear error when a unix socket path is too long for the kernel."""
    from hyperhive.errors import ConfigError

    if len(os.fsencode(path)) > SUN_PATH_MAX:
        raise ConfigError(
            f"socket path {str(path)!r} is {len(os.fsencode(path))} bytes; unix sockets allow "
            f"{SUN_PATH_MAX}: choose a shorter --home / HIVE_HOME"
        )
    return path
