"""`SupervisedRuntime`: the lifecycle shared by the process and bwrap backends.

- `start` spawns a launcher with `posix_spawn` in a new session (never a child that dies with the
  daemon or its event loop): stdin /dev/null, stdout+stderr appended to `log_dir/harness.log`
  (rotated on start), the launcher joins the agent's cgroup and execs the backend's command.
- The backend reports the agent's main pid on an info pipe (bwrap's `--info-fd`, the wrapper's
  own) and leaves the exit status in a file; `exit.json` (`{"exit_code": N}`) is derived from it.
- `runtime.json` in log_dir records pid, start time (kernel ticks, against pid reuse), child pid,
  cgroup, config_rev, network and started_at, so a new runtime instance can `adopt` the running
  agent. An adopted sandbox keeps the revision and network of its record (what it was built
  from), whatever config was applied meanwhile.
- Exits are observed through a pidfd registered with the event loop (no polling, no threads);
  the daemon reaps its own children and tolerates adopted ones it cannot reap.
- `stop` = SIGTERM to the agent's main process, wait, then hard `kill` (cgroup freeze, SIGKILL
  all, thaw; SIGKILL the launcher). A hard-killed agent whose backend wrote no status gets 137.

The host process helpers it uses live in `hostproc.py`; the backends in `process.py`, `bwrap.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from hyperhive.errors import Conflict, NotFound, Unavailable
from hyperhive.runtime.base import LaunchSpec, Runtime, RuntimeStatus
from hyperhive.runtime.cgroups import PARENT, AgentCgroup
from hyperhive.runtime.hostproc import (
    exit_code_of,
    first_json_value,
    open_pidfd,
    pid_alive,
    proc_cmdline,
    proc_stat,
    read_json,
    read_until_eof,
    reap,
    rotate_log,
    spawn_detached,
    wait_readable,
    write_json,
)

logger = logging.getLogger(__name__)

LOG_NAME = "harness.log"
EXIT_KILLED = 137
EXIT_UNKNOWN = 255
INFO_TIMEOUT = 30.0
KILL_TIMEOUT = 10.0


@dataclass
class Launch:
    """What a backend wants spawned: argv (already wrapped), env, and fds for the child."""

    argv: list[str]
    env: dict[str, str]
    fds: dict[int, int] = field(default_factory=dict)  # child fd -> daemon fd (closed after)
    info_fd: int | None = None  # daemon end of the pipe that reports {"child-pid": N}
    record: dict[str, Any] = field(default_factory=dict)  # extra runtime.json fields


@dataclass
class Sandbox:
    """One agent instance the runtime supervises (started or adopted)."""

    spec: LaunchSpec
    pid: int
    start_ticks: int
    started_at: float
    cgroup: AgentCgroup
    child_pid: int | None = None
    child_ticks: int | None = None
    main_pid: int | None = None  # the agent's own main process (the signal target)
    main_ticks: int | None = None
    pidfd: int | None = None
    is_child: bool = True  # ours to reap (False when adopted)
    killed: bool = False
    exit_code: int | None = None
    oom_kills: int = 0  # last read of the cgroup's OOM-kill counter
    done: asyncio.Event = field(default_factory=asyncio.Event)
    watcher: asyncio.Task[None] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def running(self) -> bool:
        return not self.done.is_set()


class SupervisedRuntime(Runtime):
    """Start/stop/adopt detached sandboxes; subclasses say how to launch and how exit is told."""

    name = "supervised"
    launcher_name = ""  # basename expected in the adopted pid's cmdline

    def __init__(self, *, cgroup_root: Path | None = None, scope: str = "") -> None:
        self.scope = scope  # per-hive namespace for cgroups and netns names
        self._sandboxes: dict[str, Sandbox] = {}
        self._ended: dict[str, RuntimeStatus] = {}  # adopted after they had ended
        self._locks: dict[str, asyncio.Lock] = {}
        self._cgroup_root = cgroup_root
        self._closed = False

    # -- hooks
    async def _launch(self, spec: LaunchSpec, cgroup: AgentCgroup) -> Launch:
        raise NotImplementedError

    def _exit_from_files(self, spec: LaunchSpec) -> int | None:
        """The exit code the backend left in log_dir, if it has finished."""
        data = read_json(spec.log_dir / "exit.json")
        code = data.get("exit_code") if data else None
        return code if isinstance(code, int) else None

    async def _after_exit(self, box: Sandbox) -> None:
        """Backend clean-up once the sandbox is gone (netns, ...)."""

    async def _abort(self, spec: LaunchSpec) -> None:
        """Backend clean-up when `start` fails after `_launch` prepared side resources."""

    async def _after_adopt(self, box: Sandbox, record: dict[str, Any]) -> None:
        """Backend re-attachment of side resources for an adopted, running sandbox."""

    async def _cleanup_stale(self, spec: LaunchSpec, record: dict[str, Any]) -> None:
        """Backend clean-up of leftovers of a sandbox that ended while no daemon watched."""

    def _reset_files(self, spec: LaunchSpec) -> None:
        (spec.log_dir / "exit.json").unlink(missing_ok=True)

    # -- helpers
    def _lock(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(name, asyncio.Lock())

    def resource_usage(self, name: str) -> dict[str, float]:
        cg = self._cgroup(name)
        return cg.usage() if cg.exists() else {}

    def _cgroup(self, name: str) -> AgentCgroup:
        parent = f"{PARENT}/{self.scope}" if self.scope else PARENT
        if self._cgroup_root is None:
            return AgentCgroup(name, parent=parent)
        return AgentCgroup(name, root=self._cgroup_root, parent=parent)

    def _read_oom(self, box: Sandbox) -> int:
        """The OOM kills in the agent's cgroup so far (the counter dies with the group, so
        the last value read is kept for an ended sandbox)."""
        if box.running and box.cgroup.enabled:
            box.oom_kills = max(box.oom_kills, box.cgroup.memory_events().get("oom_kill", 0))
        return box.oom_kills

    def _status(self, box: Sandbox) -> RuntimeStatus:
        return RuntimeStatus(
            name=box.spec.name,
            running=box.running,
            pid=(box.main_pid or box.child_pid or box.pid) if box.running else None,
            exit_code=box.exit_code,
            started_at=box.started_at,
            config_rev=box.spec.config_rev,
            oom_kills=self._read_oom(box),
        )

    def _record(self, box: Sandbox) -> dict[str, Any]:
        return {
            "runtime": self.name,
            "name": box.spec.name,
            "pid": box.pid,
            "start_ticks": box.start_ticks,
            "child_pid": box.child_pid,
            "child_ticks": box.child_ticks,
            "main_pid": box.main_pid,
            "main_ticks": box.main_ticks,
            "cgroup": {k: str(v) for k, v in box.cgroup.dirs.items()} if box.cgroup.enabled else {},
            "config_rev": box.spec.config_rev,
            "started_at": box.started_at,
            "uid": box.spec.uid,
            "network": box.spec.network,
            **box.extra,
        }

    def _log(self, level: int, msg: str, name: str, action: str, *args: object) -> None:
        logger.log(level, msg, *args, extra={"action": action, "agent": name})

    # -- Runtime API
    async def start(self, spec: LaunchSpec) -> RuntimeStatus:
        async with self._lock(spec.name):
            old = self._sandboxes.get(spec.name)
            if old is not None and old.running:
                raise Conflict(f"agent {spec.name!r} is already running (pid {old.pid})")
            record = read_json(spec.log_dir / "runtime.json")
            if record and self._record_alive(record):
                raise Conflict(
                    f"agent {spec.name!r} is already running (pid {record.get('pid')}): adopt it"
                )
            spec.log_dir.mkdir(parents=True, exist_ok=True)
            rotate_log(spec.log_dir / LOG_NAME)
            self._reset_files(spec)
            cgroup = self._cgroup(spec.name)
            cgroup.create(spec.limits)
            try:
                launch = await self._launch(spec, cgroup)
                box = await self._spawn(spec, cgroup, launch)
            except BaseException:
                await self._abort(spec)
                await cgroup.remove()
                raise
            write_json(spec.log_dir / "runtime.json", self._record(box))
            self._ended.pop(spec.name, None)
            self._watch(box)
            self._log(
                logging.INFO, "started %s (pid %s)", spec.name, "start", spec.name, box.main_pid
            )
            return self._status(box)

    async def _spawn(self, spec: LaunchSpec, cgroup: AgentCgroup, launch: Launch) -> Sandbox:
        try:
            pid = spawn_detached(launch.argv, launch.env, spec.log_dir / LOG_NAME, launch.fds)
        except BaseException:
            if launch.info_fd is not None:
                os.close(launch.info_fd)
            raise
        finally:
            for fd in launch.fds.values():
                os.close(fd)
        st = proc_stat(pid)
        box = Sandbox(
            spec=spec,
            pid=pid,
            start_ticks=st[1] if st else 0,
            started_at=time.time(),
            cgroup=cgroup,
            extra=launch.record,
        )
        box.pidfd = os.pidfd_open(pid)
        if launch.info_fd is not None:
            try:
                info = await read_until_eof(launch.info_fd, INFO_TIMEOUT)
            except TimeoutError:
                info = b""
            finally:
                os.close(launch.info_fd)
            child = first_json_value(info, "child-pid")
            if not isinstance(child, int):
                await self._fail_start(box)
            box.child_pid = child
            cst = proc_stat(child)
            box.child_ticks = cst[1] if cst else None
        await self._after_spawn(box)
        return box

    async def _after_spawn(self, box: Sandbox) -> None:
        """Find the agent's main process (default: the reported child, else the launcher)."""
        box.main_pid, box.main_ticks = (
            (box.child_pid, box.child_ticks) if box.child_pid else (box.pid, box.start_ticks)
        )

    async def _fail_start(self, box: Sandbox) -> NoReturn:
        """The launcher died before reporting a child: reap it and say why."""
        assert box.pidfd is not None
        with contextlib.suppress(ProcessLookupError):
            signal.pidfd_send_signal(box.pidfd, signal.SIGKILL)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wait_readable(box.pidfd), KILL_TIMEOUT)
        reap(box.pid)
        os.close(box.pidfd)
        await box.cgroup.kill_all()
        tail = _tail(box.spec.log_dir / LOG_NAME)
        raise Unavailable(f"sandbox of {box.spec.name!r} failed to start: {tail}")

    def _watch(self, box: Sandbox) -> None:
        box.watcher = asyncio.get_running_loop().create_task(
            self._watch_exit(box), name=f"{self.name}-watch-{box.spec.name}"
        )
        self._sandboxes[box.spec.name] = box

    async def _watch_exit(self, box: Sandbox) -> None:
        assert box.pidfd is not None
        try:
            await wait_readable(box.pidfd)
        finally:
            os.close(box.pidfd)
            box.pidfd = None
        status = reap(box.pid) if box.is_child else None
        code = self._exit_from_files(box.spec)
        if code is None and status is not None:
            code = exit_code_of(status)
        if code is None:
            code = EXIT_KILLED if box.killed else EXIT_UNKNOWN
        await self._finish(box, code)

    async def _finish(self, box: Sandbox, code: int) -> None:
        exit_file = box.spec.log_dir / "exit.json"
        if read_json(exit_file) is None:
            write_json(exit_file, {"exit_code": code})
        self._read_oom(box)  # before the group (and its counter) is removed
        try:
            if box.cgroup.enabled and box.cgroup.procs():
                await box.cgroup.kill_all()  # leftovers (process runtime) die with the agent
            await box.cgroup.remove()
            await self._after_exit(box)
        finally:
            box.exit_code = code
            box.done.set()
            self._log(logging.INFO, "%s exited with %d", box.spec.name, "exit", box.spec.name, code)

    def _record_alive(self, record: dict[str, Any]) -> bool:
        pid, ticks = record.get("pid"), record.get("start_ticks")
        if not isinstance(pid, int) or not isinstance(ticks, int) or not pid_alive(pid, ticks):
            return False
        cmd = proc_cmdline(pid)
        return bool(cmd) and os.path.basename(cmd[0]) == self.launcher_name

    async def adopt(self, spec: LaunchSpec) -> RuntimeStatus:
        async with self._lock(spec.name):
            box = self._sandboxes.get(spec.name)
            if box is not None and box.running:
                return self._status(box)
            record = read_json(spec.log_dir / "runtime.json") or {}
            cgroup = self._cgroup(spec.name)
            pidfd = None
            if self._record_alive(record):
                pidfd = open_pidfd(int(record["pid"]), int(record["start_ticks"]))
            if pidfd is not None and cgroup.adopt() and not cgroup.contains(int(record["pid"])):
                os.close(pidfd)  # same pid and start time but not in the agent's cgroup
                pidfd = None
            if pidfd is None:
                code = self._exit_from_files(spec)
                if record:
                    await self._cleanup_stale(spec, record)
                    await cgroup.remove()
                if code is not None and read_json(spec.log_dir / "exit.json") is None:
                    write_json(spec.log_dir / "exit.json", {"exit_code": code})
                started = record.get("started_at")
                st = RuntimeStatus(
                    name=spec.name,
                    running=False,
                    exit_code=code,
                    started_at=started if isinstance(started, float) else None,
                    config_rev=str(record.get("config_rev", "")),
                )
                self._ended[spec.name] = st
                return st
            box = Sandbox(
                spec=built_spec(spec, record),
                pid=int(record["pid"]),
                start_ticks=int(record["start_ticks"]),
                started_at=float(record.get("started_at") or time.time()),
                cgroup=cgroup,
                child_pid=record.get("child_pid"),
                child_ticks=record.get("child_ticks"),
                main_pid=record.get("main_pid"),
                main_ticks=record.get("main_ticks"),
                pidfd=pidfd,
                is_child=False,
                extra={k: v for k, v in record.items() if k in ("netns", "slirp_pid")},
            )
            await self._after_adopt(box, record)
            self._watch(box)
            self._log(logging.INFO, "adopted %s (pid %d)", spec.name, "adopt", spec.name, box.pid)
            return self._status(box)

    async def status(self, name: str) -> RuntimeStatus:
        box = self._sandboxes.get(name)
        if box is None:
            return self._ended.get(name) or RuntimeStatus(name=name, running=False)
        return self._status(box)

    async def wait(self, name: str) -> int:
        box = self._sandboxes.get(name)
        if box is None:
            ended = self._ended.get(name)
            if ended is not None and ended.exit_code is not None:
                return ended.exit_code  # adopted after it had already ended
            raise NotFound(f"agent {name!r} was not started or adopted by this runtime")
        await box.done.wait()
        assert box.exit_code is not None
        return box.exit_code

    async def stop(self, name: str, timeout: float = 30.0) -> RuntimeStatus:
        box = self._sandboxes.get(name)
        if box is None or not box.running:
            return await self.status(name)
        self._log(logging.INFO, "stopping %s", name, "stop", name)
        self._signal_main(box, signal.SIGTERM)
        try:
            await asyncio.wait_for(box.done.wait(), timeout)
        except TimeoutError:
            self._log(
                logging.WARNING,
                "%s ignored SIGTERM for %.1fs: killing",
                name,
                "stop_timeout",
                name,
                timeout,
            )
            return await self.kill(name)
        return self._status(box)

    def _signal_main(self, box: Sandbox, sig: signal.Signals) -> None:
        """Signal the agent's main process (not bwrap's pid 1, which ignores SIGTERM)."""
        if box.main_pid is None:
            return
        fd = open_pidfd(box.main_pid, box.main_ticks)
        if fd is None:
            return
        try:
            signal.pidfd_send_signal(fd, sig)
        except ProcessLookupError:
            pass
        finally:
            os.close(fd)

    async def kill(self, name: str) -> RuntimeStatus:
        box = self._sandboxes.get(name)
        if box is None or not box.running:
            return await self.status(name)
        box.killed = True
        self._log(logging.WARNING, "killing %s", name, "kill", name)
        await box.cgroup.kill_all()
        # without cgroups too: SIGKILL to a pid namespace's init kills everything inside it
        targets = [(box.child_pid, box.child_ticks), (box.pid, box.start_ticks)]
        for pid, ticks in targets:
            fd = open_pidfd(pid, ticks) if pid else None
            if fd is not None:
                with contextlib.suppress(ProcessLookupError):
                    signal.pidfd_send_signal(fd, signal.SIGKILL)
                os.close(fd)
        try:
            await asyncio.wait_for(box.done.wait(), KILL_TIMEOUT)
        except TimeoutError:
            raise Unavailable(f"agent {name!r} did not die after SIGKILL") from None
        return self._status(box)

    async def stop_all(self, timeout: float = 30.0) -> None:
        """Stop every running agent (daemon shutdown with `--stop-agents`)."""
        names = [n for n, b in self._sandboxes.items() if b.running]
        await asyncio.gather(*(self.stop(n, timeout) for n in names))

    async def aclose(self) -> None:
        """Stop watching (agents keep running; a new runtime adopts them). Idempotent."""
        if self._closed:
            return
        self._closed = True
        tasks = [b.watcher for b in self._sandboxes.values() if b.watcher and not b.watcher.done()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._close_side_tasks()

    async def _close_side_tasks(self) -> None:
        """Backend hook: cancel supervisors of side processes (they keep running)."""


def built_spec(spec: LaunchSpec, record: dict[str, Any]) -> LaunchSpec:
    """`spec` as the adopted sandbox was really built: its config revision and network come
    from its `runtime.json`, not from the config applied since (that one waits for a rebuild,
    and until then the agent shows `needs_update`)."""
    network = record.get("network")
    return dataclasses.replace(
        spec,
        config_rev=str(record.get("config_rev") or ""),
        network=network if network in ("none", "egress", "host") else spec.network,
    )


def _tail(path: Path, limit: int = 600) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - limit))
            text = f.read().decode(errors="replace").strip()
    except OSError:
        return "(no log)"
    return text.splitlines()[-1] if text else "(empty log)"


def setpriv_args(uid: int) -> list[str]:
    """Become `uid` for good: no groups, no capabilities (bounding set too), no new privileges."""
    return [
        f"--reuid={uid}",
        f"--regid={uid}",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--no-new-privs",
    ]


def agent_env(spec: LaunchSpec, *, state: Path, sock: Path, shared: Path) -> dict[str, str]:
    """The environment every runtime gives the agent (before `spec.env` overrides)."""
    git_name = spec.git_name or spec.name
    email = f"{spec.name}@hyperhive"
    return {
        "HOME": str(state),
        # claude run by hand in the agent (`hive login`, `hive shell`) uses the agent's login
        "CLAUDE_CONFIG_DIR": str(state / ".claude"),
        "USER": spec.name,
        "LOGNAME": spec.name,
        "HIVE_AGENT": spec.name,
        "HIVE_STATE_DIR": str(state),
        "HIVE_SOCK_DIR": str(sock),
        "HIVE_SHARED_DIR": str(shared),
        "GIT_AUTHOR_NAME": git_name,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_COMMITTER_NAME": git_name,
        "GIT_COMMITTER_EMAIL": email,
    }
