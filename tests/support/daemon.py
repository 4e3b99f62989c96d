"""Run a real `hive serve` subprocess for tests that kill or restart the daemon.

Invariant: the log file handed to the child is closed in the parent as soon as the child has
it (the child keeps its own descriptor), and `stop`/`kill9` reap the child, so no file or
process handle outlives the test (`error::ResourceWarning`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from hyperhive.paths import HivePaths
from tests.support.waiting import eventually_sync

# a hang guard, not a speed assertion: a daemon start takes well under a second on an idle
# machine and several seconds when every core is busy (it was 20 s: a start timed out under load)
START_TIMEOUT = 90.0


class DaemonProcess:
    def __init__(
        self,
        home: Path,
        *extra: str,
        config: str = '[defaults]\nruntime = "external"\n',
        prefix: tuple[str, ...] = (),
    ) -> None:
        self.paths = HivePaths(home)
        self.extra = extra
        self.prefix = prefix  # argv before the interpreter (`ip netns exec NS`)
        home.mkdir(parents=True, exist_ok=True)
        if not self.paths.config_file.exists():
            self.paths.config_file.write_text(config)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = home.parent / f"{home.name}-serve.log"

    def start(self, timeout: float = START_TIMEOUT) -> DaemonProcess:
        env = {**os.environ, "HIVE_HOME": str(self.paths.home)}
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [*self.prefix, sys.executable, "-m", "hyperhive.cli", "serve", *self.extra],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            self._wait_up(timeout)
        except BaseException:
            self.stop()  # reaped: no child (and no Popen handle) outlives a failed start
            raise
        return self

    def _wait_up(self, timeout: float) -> None:
        proc = self.proc
        assert proc is not None

        def up() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"daemon exited: {self.log.read_text()[-2000:]}")
            return self.paths.host_sock.exists() and self._answers()

        try:
            eventually_sync(up, timeout, "the daemon to answer")
        except AssertionError:
            raise TimeoutError(f"daemon did not come up: {self.log.read_text()[-2000:]}") from None

    def _answers(self) -> bool:
        import json
        import socket

        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(1)
                s.connect(str(self.paths.host_sock))
                s.sendall(b'{"cmd":"list"}\n')
                with s.makefile() as f:
                    return bool(json.loads(f.readline()).get("ok"))
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


# Hang guards for tests that run the real `hive` CLI: each run starts a Python process that
# imports the CLI (~0.8 s of CPU, ~9 s of wall time on a machine loaded 15 times over), so a
# test of a dozen commands outlives pytest's default 180 s there without anything being wrong.
CLI_TIMEOUT = 180.0
CLI_TEST_TIMEOUT = 900


def hive_cli(d: DaemonProcess, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the real `hive` CLI against the daemon `d`."""
    return subprocess.run(
        [sys.executable, "-m", "hyperhive.cli", *args],
        env={**os.environ, "HIVE_HOME": str(d.paths.home)},
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
    )
