"""Start a throwaway `hive serve` subprocess on a temp home for a benchmark (yields its paths
and pid, so a benchmark can read the daemon's CPU time)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from hyperhive.config import FREE_PORT_LISTEN
from hyperhive.paths import HivePaths


def _answers(sock: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(1)
            s.connect(str(sock))
            s.sendall(b'{"cmd":"list"}\n')
            return bool(json.loads(s.makefile().readline()).get("ok"))
    except (OSError, ValueError):
        return False


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def throwaway_daemon(
    extra_env: dict[str, str] | None = None,
    prepare: Callable[[HivePaths], None] | None = None,
    config: str = '[defaults]\nruntime = "external"\n',
) -> Iterator[tuple[HivePaths, int]]:
    """`prepare(paths)` runs before the daemon starts (e.g. to fill its database)."""
    home = Path(tempfile.mkdtemp(dir="/tmp", prefix="hhb"))
    paths = HivePaths(home)
    # the benchmark's clients are the agents: nothing is launched for them
    paths.config_file.write_text(config)
    if prepare is not None:
        try:
            prepare(paths)
        except BaseException:
            shutil.rmtree(home, ignore_errors=True)
            raise
    log = open(home / "serve.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "hyperhive.cli", "serve"],
        # a free dashboard port: the default one may belong to another hive on this host
        env={
            **os.environ,
            "HIVE_HOME": str(home),
            "HIVE_DASHBOARD": FREE_PORT_LISTEN,
            **(extra_env or {}),
        },
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while not (paths.host_sock.exists() and _answers(paths.host_sock)):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((home / "serve.log").read_text()[-2000:])
            time.sleep(0.02)
        yield paths, proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        shutil.rmtree(home, ignore_errors=True)
