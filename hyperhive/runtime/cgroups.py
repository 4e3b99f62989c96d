"""Per-agent cgroups: limits, membership, freeze/kill, removal — on cgroup v1 or v2.

Layout: v1 gets one directory per controller, `<root>/<controller>/hyperhive/<agent>` for
memory, pids, cpu and freezer; v2 (unified hierarchy mounted at `<root>`) gets one directory
`<root>/hyperhive/<agent>` with those controllers enabled in the parents.

Invariants:
- A launcher joins the group *before* it execs the sandbox (`procs_files` are written with the
  launcher's own pid), so every process of the agent is accounted and killable.
- When cgroups are not writable (no root, read-only mount) `create` logs one warning and the
  group is `enabled = False`: limits are not enforced, every other method is a harmless no-op.
- `remove` is idempotent and only removes empty groups.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from hyperhive.names import validate_name
from hyperhive.runtime.base import Limits

logger = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")
PARENT = "hyperhive"
V1_CONTROLLERS = ("memory", "pids", "cpu", "freezer")
CPU_PERIOD_US = 100_000


def cgroup_version(root: Path = CGROUP_ROOT) -> int:
    """2 when `root` is the unified hierarchy, 1 when it holds v1 controllers, 0 when neither."""
    if (root / "cgroup.controllers").is_file():
        return 2
    if (root / "freezer" / "cgroup.procs").is_file() or (
        root / "memory" / "cgroup.procs"
    ).is_file():
        return 1
    return 0


def _write(path: Path, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


class AgentCgroup:
    """The cgroup(s) of one agent."""

    def __init__(self, name: str, *, root: Path = CGROUP_ROOT, parent: str = PARENT) -> None:
        self.name = validate_name(name)
        self.root = root
        self.parent = parent
        self.version = cgroup_version(root)
        self.enabled = False
        # every directory this agent may have; `dirs` is the subset in use
        self.all_dirs: dict[str, Path] = {}
        if self.version == 2:
            self.all_dirs = {"unified": root / parent / name}
        elif self.version == 1:
            self.all_dirs = {
                c: root / c / parent / name for c in V1_CONTROLLERS if (root / c).is_dir()
            }
        self.dirs = dict(self.all_dirs)

    def _needed(self, limits: Limits) -> dict[str, Path]:
        """v1: joining a fresh cgroup costs ~5 ms per controller (measured), so an agent joins
        only the freezer (kill, membership) and the controllers its limits need."""
        if self.version != 1:
            return dict(self.all_dirs)
        wanted = {"freezer"}
        if limits.memory_mb:
            wanted.add("memory")
        if limits.pids:
            wanted.add("pids")
        if limits.cpu_percent:
            wanted.add("cpu")
        if "freezer" not in self.all_dirs:
            wanted |= set(V1_CONTROLLERS)  # no freezer: membership via whatever exists
        return {c: d for c, d in self.all_dirs.items() if c in wanted}

    def _dir(self, controller: str) -> Path | None:
        return self.dirs.get("unified" if self.version == 2 else controller)

    def exists(self) -> bool:
        return any(d.is_dir() for d in self.all_dirs.values())

    def create(self, limits: Limits) -> bool:
        """Create the group(s) and apply `limits`. Returns whether cgroups are in force."""
        if not self.dirs:
            self._degrade(f"no cgroup hierarchy found under {self.root}", limits)
            return False
        self.dirs = self._needed(limits)
        try:
            if self.version == 2:
                self._create_v2()
            else:
                for d in self.dirs.values():
                    d.mkdir(parents=True, exist_ok=True)
            self.enabled = True
            self.set_limits(limits)
        except OSError as exc:
            self.enabled = False
            self._degrade(f"cgroups not writable: {exc}", limits)
            return False
        return True

    def _degrade(self, why: str, limits: Limits) -> None:
        unenforced = " (limits NOT enforced)" if limits != Limits() else ""
        logger.warning(
            "agent %s runs without its own cgroup: %s%s",
            self.name,
            why,
            unenforced,
            extra={"action": "cgroup_degraded", "agent": self.name},
        )

    def _create_v2(self) -> None:
        parent = self.root / self.parent
        parent.mkdir(parents=True, exist_ok=True)
        available = set((self.root / "cgroup.controllers").read_text().split())
        wanted = [c for c in ("memory", "pids", "cpu") if c in available]
        levels = [self.root]
        for part in Path(self.parent).parts:  # e.g. hyperhive/<hive scope>
            levels.append(levels[-1] / part)
        for level in levels:
            for c in wanted:
                with contextlib.suppress(OSError):  # already on, or delegated elsewhere
                    _write(level / "cgroup.subtree_control", f"+{c}")
        self.dirs["unified"].mkdir(exist_ok=True)

    def adopt(self) -> bool:
        """Attach to groups a previous daemon created (no limits are changed)."""
        self.dirs = {c: d for c, d in self.all_dirs.items() if d.is_dir()}
        self.enabled = bool(self.dirs)
        return self.enabled

    def set_limits(self, limits: Limits) -> None:
        if not self.enabled:
            return
        mem = limits.memory_mb * 1024 * 1024
        quota = limits.cpu_percent * CPU_PERIOD_US // 100
        if self.version == 2:
            d = self.dirs["unified"]
            self._set(d / "memory.max", str(mem) if mem else "max")
            self._set(d / "memory.swap.max", "0" if mem else "max")
            self._set(d / "pids.max", str(limits.pids) if limits.pids else "max")
            self._set(d / "cpu.max", f"{quota if quota else 'max'} {CPU_PERIOD_US}")
            return
        if (m := self._dir("memory")) is not None:
            # memsw must stay >= the memory limit: lower it last when limiting, raise it first
            if mem:
                self._set(m / "memory.limit_in_bytes", str(mem))
                self._set(m / "memory.memsw.limit_in_bytes", str(mem))
            else:
                self._set(m / "memory.memsw.limit_in_bytes", "-1")
                self._set(m / "memory.limit_in_bytes", "-1")
        if (p := self._dir("pids")) is not None:
            self._set(p / "pids.max", str(limits.pids) if limits.pids else "max")
        if (c := self._dir("cpu")) is not None:
            self._set(c / "cpu.cfs_period_us", str(CPU_PERIOD_US))
            self._set(c / "cpu.cfs_quota_us", str(quota) if quota else "-1")

    def _set(self, path: Path, value: str) -> None:
        try:
            _write(path, value)
        except FileNotFoundError:
            if path.name != "memory.memsw.limit_in_bytes" and path.name != "memory.swap.max":
                raise  # swap accounting may be off; everything else must exist

    def procs_files(self) -> list[Path]:
        """The `cgroup.procs` files a launcher writes its pid into before exec."""
        if not self.enabled:
            return []
        return [d / "cgroup.procs" for d in self.dirs.values()]

    def attach(self, pid: int) -> None:
        for f in self.procs_files():
            _write(f, str(pid))

    def procs(self) -> list[int]:
        """Every pid in the group (union over controllers)."""
        found: set[int] = set()
        for f in self.procs_files():
            try:
                found.update(int(x) for x in f.read_text().split())
            except FileNotFoundError:
                continue
        return sorted(found)

    def contains(self, pid: int) -> bool:
        return pid in self.procs()

    async def freeze(self, timeout: float = 5.0) -> bool:
        """Freeze every process of the group; True once the kernel reports it frozen."""
        if not self.enabled:
            return False
        if self.version == 2:
            d = self.dirs["unified"]
            _write(d / "cgroup.freeze", "1")
            return await self._until(
                lambda: "frozen 1" in (d / "cgroup.events").read_text(), timeout
            )
        f = self._dir("freezer")
        if f is None:
            return False
        _write(f / "freezer.state", "FROZEN")
        return await self._until(
            lambda: (f / "freezer.state").read_text().strip() == "FROZEN", timeout
        )

    async def _until(self, check: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            if check():
                return True
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.005)  # kernel state transition: no event to wait on in v1

    def thaw(self) -> None:
        if not self.enabled:
            return
        if self.version == 2:
            _write(self.dirs["unified"] / "cgroup.freeze", "0")
        elif (f := self._dir("freezer")) is not None:
            _write(f / "freezer.state", "THAWED")

    async def kill_all(self) -> int:
        """Hard kill: freeze, SIGKILL every member, thaw (so none can fork away meanwhile).
        Returns how many processes were signalled."""
        if not self.enabled:
            return 0
        frozen = await self.freeze()
        if not frozen:
            logger.warning(
                "cgroup of %s did not freeze; killing anyway",
                self.name,
                extra={"action": "cgroup_freeze_failed", "agent": self.name},
            )
        pids = self.procs()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.thaw()
        return len(pids)

    async def remove(self, timeout: float = 5.0) -> None:
        """Remove the group(s) once empty. Idempotent; leftovers are logged, not raised."""
        deadline = time.monotonic() + timeout
        for d in self.all_dirs.values():
            while True:
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:
                    if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                        logger.warning(
                            "cannot remove cgroup %s: %s",
                            d,
                            exc,
                            extra={"action": "cgroup_remove_failed", "agent": self.name},
                        )
                        break
                    await asyncio.sleep(0.01)  # exiting processes leave the group shortly
            self._remove_empty_parents(d)
        self.enabled = False

    def _remove_empty_parents(self, d: Path) -> None:
        """Remove the hive's scope dir (`hyperhive/<scope>`) once its last agent's group is
        gone, so a hive leaves nothing behind in the hierarchy. A scope still holding another
        agent's group refuses (EBUSY / ENOTEMPTY), which is fine: that agent removes it. The
        shared `hyperhive/` stays (another hive's daemon may be creating a scope in it); only
        this hive's daemon ever creates its scope, on the same event loop, so nothing races."""
        if len(Path(self.parent).parts) >= 2:
            with contextlib.suppress(OSError):
                d.parent.rmdir()

    def memory_events(self) -> dict[str, int]:
        """OOM counters (`oom_kill`, ...) when the kernel exposes them."""
        d = self._dir("memory")
        if d is None:
            return {}
        name = "memory.events" if self.version == 2 else "memory.oom_control"
        try:
            lines = (d / name).read_text().splitlines()
        except OSError:
            return {}
        out: dict[str, int] = {}
        for line in lines:
            key, _, value = line.partition(" ")
            if value.strip().isdigit():
                out[key] = int(value)
        return out

    def usage(self) -> dict[str, float]:
        """What the agent's processes use now: `memory_bytes` (resident + page cache charged
        to the group) and `cpu_seconds` (since the group was made); keys the kernel does
        not expose are left out."""
        out: dict[str, float] = {}
        mem = self._dir("memory")
        if mem is not None:
            name = "memory.current" if self.version == 2 else "memory.usage_in_bytes"
            with contextlib.suppress(OSError, ValueError):
                out["memory_bytes"] = float((mem / name).read_text().strip())
        cpu = self._dir("cpu")
        if cpu is not None:
            with contextlib.suppress(OSError, ValueError):
                if self.version == 2:
                    for line in (cpu / "cpu.stat").read_text().splitlines():
                        key, _, value = line.partition(" ")
                        if key == "usage_usec":
                            out["cpu_seconds"] = int(value) / 1e6
                else:
                    out["cpu_seconds"] = int((cpu / "cpuacct.usage").read_text()) / 1e9
        return out
