"""`ProcessRuntime`: no isolation, the agent runs as a plain host process (explicit opt-in).

It shares the supervised lifecycle (`supervised.py`: logs, exit status, adoption, cgroup
limits); its launcher is a small stdlib-only wrapper that reports the child's pid and writes
`exit.json` when it ends.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from hyperhive.runtime.base import LaunchSpec
from hyperhive.runtime.cgroups import AgentCgroup
from hyperhive.runtime.hostproc import launcher_argv, which
from hyperhive.runtime.supervised import (
    Launch,
    SupervisedRuntime,
    agent_env,
    setpriv_args,
)

logger = logging.getLogger(__name__)

# Runs argv[2:] as a child, forwards SIGTERM/SIGINT/SIGHUP to it, reports the child's pid on
# fd 3 and writes {"exit_code": N} to argv[1] (atomically) when it ends. Stdlib only: it must
# not depend on the daemon's package state.
EXIT_WRAPPER = r"""
import json, os, signal, sys
exit_file, argv = sys.argv[1], sys.argv[2:]
os.set_inheritable(3, False)  # the info pipe must reach EOF once reported, not live on in argv
pid = os.fork()
if pid == 0:
    try:
        os.execvp(argv[0], argv)
    except OSError as exc:
        print(f"cannot run {argv[0]}: {exc}", file=sys.stderr, flush=True)
    os._exit(127)
for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(s, lambda n, f: os.kill(pid, n))
try:
    os.write(3, json.dumps({"child-pid": pid}).encode())
    os.close(3)
except OSError:
    pass
_, st = os.waitpid(pid, 0)
code = os.waitstatus_to_exitcode(st)
code = 128 - code if code < 0 else code
tmp = exit_file + ".tmp"
with open(tmp, "w") as f:
    f.write(json.dumps({"exit_code": code}) + "\n")
os.replace(tmp, exit_file)
sys.exit(code)
"""


class ProcessRuntime(SupervisedRuntime):
    """No isolation: the agent runs as a plain host process (explicit opt-in). Same logs, exit
    status, adoption and cgroup limits as the sandboxed runtime; paths are host paths, given to
    the harness as HIVE_STATE_DIR / HIVE_SOCK_DIR / HIVE_SHARED_DIR."""

    name = "process"
    isolated = False
    launcher_name = os.path.basename(sys.executable)

    def __init__(
        self, *, python: str | None = None, cgroup_root: Path | None = None, scope: str = ""
    ) -> None:
        super().__init__(cgroup_root=cgroup_root, scope=scope)
        self.python = python or sys.executable
        self.launcher_name = os.path.basename(self.python)

    async def _launch(self, spec: LaunchSpec, cgroup: AgentCgroup) -> Launch:
        logger.warning(
            "agent %s runs WITHOUT a sandbox (process runtime)",
            spec.name,
            extra={"action": "unsandboxed", "agent": spec.name},
        )
        spec.state_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env.update(
            agent_env(spec, state=spec.state_dir, sock=spec.sock_dir, shared=spec.shared_dir)
        )
        env.update(spec.env)
        argv = list(spec.argv)
        if os.geteuid() == 0 and spec.uid is not None:
            os.chown(spec.state_dir, spec.uid, spec.uid)
            argv = [which("setpriv"), *setpriv_args(spec.uid), "--", *argv]
        # cwd: the wrapper execs from the launcher's "/", so chdir through env -C (coreutils)
        argv = ["/usr/bin/env", "-C", str(spec.state_dir), *argv]
        read_end, write_end = os.pipe()
        wrapper = [self.python, "-I", "-S", "-c", EXIT_WRAPPER, str(spec.log_dir / "exit.json")]
        return Launch(
            argv=launcher_argv(cgroup, [*wrapper, *argv]),
            env=env,
            fds={3: write_end},
            info_fd=read_end,
        )
