"""Run a real `hive serve` subprocess for tests that kill or restart the daemon."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from hyperhive.paths import HivePaths


class DaemonProcess:
    def __init__(
        self, home: Path, *extra: str, config: str = '[defaults]\nruntime = "external"\n'
    ) -> None:
        self.paths = HivePaths(home)
        self.extra = extra
        home.mkdir(parents=True, exist_ok=True)
        if not self.paths.config_file.exists():
            self.paths.config_file.write_text(config)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = home.parent / f"{home.name}-serve.log"

    def start(self, timeout: float = 20.0) -> DaemonProcess:
        env = {**os.environ, "HIVE_HOME": str(self.paths.home)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hyperhive.cli", "serve", *self.extra],
            env=env,
            stdout=open(self.log, "ab"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited: {self.log.read_text()[-2000:]}")
            if self.paths.host_sock.exists() and self._answers():
                return self
            time.sleep(0.02)
        raise TimeoutError(f"daemon did not come up: {self.log.read_text()[-2000:]}")

    def _answers(self) -> bool:
        import json
        import socket

        try:
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(1)
            s.connect(str(self.paths.host_sock))
            s.sendall(b'{"cmd":"list"}\n')
            return bool(json.loads(s.makefile().readline()).get("ok"))
        except (OSError, ValueError):
            return False

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def hive_cli(d: DaemonProcess, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the real `hive` CLI against the daemon `d`."""
    return subprocess.run(
        [sys.executable, "-m", "hyperhive.cli", *args],
        env={**os.environ, "HIVE_HOME": str(d.paths.home)},
        capture_output=True,
        text=True,
        timeout=60,
    )
