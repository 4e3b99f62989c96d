"""Host process helpers: procfs reads, pidfds, detached spawning, reaping, small json files.

Used by the supervised runtime and by the sandbox backends (`bwrap`, `netns`). No state; every
function is safe to call from the event loop (none blocks on a child).

Invariants: a pid is only trusted together with its start time in kernel ticks (`proc_stat`),
so a reused pid is never mistaken for the agent; `spawn_detached` starts a new session that
nothing ties to the daemon (it outlives it).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any

from hyperhive.errors import Unavailable
from hyperhive.runtime.cgroups import AgentCgroup

logger = logging.getLogger(__name__)

LOG_MAX_BYTES = 10 * 1024 * 1024
LOG_KEEP = 2

# Joins the cgroups given as arguments with its own pid, then execs the rest.
# Joins the cgroups given as arguments with its own pid, then execs the rest.
LAUNCH_SH = (
    'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 125; shift; n=$((n-1)); '
    'done; cd / && exec "$@"'
)


def proc_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks) of `pid`, or None if it does not exist."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[19])


def pid_alive(pid: int, start_ticks: int | None = None) -> bool:
    """True if `pid` runs (not a zombie) and, when given, started at `start_ticks`."""
    st = proc_stat(pid)
    if st is None or st[0] in ("Z", "X"):
        return False
    return start_ticks is None or st[1] == start_ticks


def proc_cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def open_pidfd(pid: int, start_ticks: int | None) -> int | None:
    """A pidfd for `pid` if it is still the process that started at `start_ticks`."""
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return None
    if not pid_alive(pid, start_ticks):  # checked after opening: pid reuse cannot slip in
        os.close(fd)
        return None
    return fd


async def wait_readable(fd: int) -> None:
    """Wait until `fd` is readable (a pidfd: until the process has exited)."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[None] = loop.create_future()

    def ready() -> None:
        if not fut.done():
            fut.set_result(None)

    loop.add_reader(fd, ready)
    try:
        await fut
    finally:
        loop.remove_reader(fd)


async def read_until_eof(fd: int, timeout: float) -> bytes:
    """Read a pipe until its writers are gone (non-blocking, on the event loop)."""
    os.set_blocking(fd, False)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    while True:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError from None
            await asyncio.wait_for(wait_readable(fd), left)
            continue
        if not data:
            return b"".join(chunks)
        chunks.append(data)


def first_json_value(raw: bytes, key: str) -> Any:
    """The first value of `key` in a stream of concatenated JSON objects (bwrap's format)."""
    for value in iter_json(raw):
        if isinstance(value, dict) and key in value:
            return value[key]
    return None


def iter_json(raw: bytes) -> list[Any]:
    decoder = json.JSONDecoder()
    text = raw.decode(errors="replace")
    out: list[Any] = []
    i = 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            return out
        try:
            value, i = decoder.raw_decode(text, i)
        except ValueError:
            return out  # a partial document at the end (still being written)
        out.append(value)


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def write_json(path: Path, value: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)


def rotate_log(path: Path, max_bytes: int = LOG_MAX_BYTES, keep: int = LOG_KEEP) -> None:
    """Rename `path` to `path.1` (shifting older ones up to `keep`) when it exceeds max_bytes."""
    try:
        if path.stat().st_size <= max_bytes:
            return
    except FileNotFoundError:
        return
    for i in range(keep, 0, -1):
        older = path.with_name(f"{path.name}.{i}")
        if i == keep:
            older.unlink(missing_ok=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                older.rename(path.with_name(f"{path.name}.{i + 1}"))
    if keep:
        path.rename(path.with_name(f"{path.name}.1"))
    else:
        path.unlink()


def which(cmd: str) -> str:
    found = shutil.which(cmd) or shutil.which(cmd, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if found is None:
        raise Unavailable(f"{cmd!r} is not installed (scripts/bootstrap.sh installs it)")
    return found


def spawn_detached(
    argv: list[str], env: dict[str, str], log_path: Path, fds: dict[int, int] | None = None
) -> int:
    """Start argv in a new session, stdout+stderr appended to log_path, fds[target] = source.
    Returns the pid. Nothing ties it to this process: it outlives the daemon."""
    log_fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
    null_fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    high: list[int] = []
    try:
        actions: list[tuple[Any, ...]] = [
            (os.POSIX_SPAWN_DUP2, null_fd, 0),
            (os.POSIX_SPAWN_DUP2, log_fd, 1),
            (os.POSIX_SPAWN_DUP2, log_fd, 2),
        ]
        for target, source in (fds or {}).items():
            moved = fcntl.fcntl(source, fcntl.F_DUPFD_CLOEXEC, 100)  # never equal to a target
            high.append(moved)
            actions.append((os.POSIX_SPAWN_DUP2, moved, target))
        exe = argv[0] if "/" in argv[0] else which(argv[0])
        return os.posix_spawn(exe, argv, env, file_actions=actions, setsid=True)
    finally:
        for fd in (log_fd, null_fd, *high):
            os.close(fd)


def launcher_argv(cgroup: AgentCgroup | None, argv: list[str]) -> list[str]:
    files = [str(f) for f in cgroup.procs_files()] if cgroup is not None else []
    return ["/bin/sh", "-c", LAUNCH_SH, "hh-launch", str(len(files)), *files, *argv]


def reap(pid: int) -> int | None:
    """Collect an exited child's wait status without blocking; None if not ours or still running."""
    try:
        got, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return None
    return status if got else None


async def kill_and_reap(pid: int, timeout: float = 10.0) -> None:
    """SIGKILL a child of ours and wait (on its pidfd) until it is gone and reaped."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        reap(pid)
        return
    try:
        with contextlib.suppress(ProcessLookupError):
            signal.pidfd_send_signal(fd, signal.SIGKILL)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wait_readable(fd), timeout)
    finally:
        os.close(fd)
    reap(pid)


def exit_code_of(status: int) -> int:
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code
