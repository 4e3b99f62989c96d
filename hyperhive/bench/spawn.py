"""Spawn benchmark: how long a sandboxed agent takes from `spawn` to ready, and what it weighs
when idle.

A throwaway in-process hive (bwrap runtime, network `none`, `hive sim` as the model endpoint,
the manager paused once it is idle). Agents are spawned one at a time, each only after the
previous one has answered its spawn kick and parked again, so no two starts share the CPU.
Per agent, all on the wall clock (the harness's event store keeps µs timestamps):

- launch: `hive.spawn` called → the sandbox's process exists (the `spawning` transient clears):
  the core's part — config repo, cgroup, bwrap set-up. The config repo's share (seed + apply,
  git; a new agent's first start only) is timed on its own on a twin name just before;
- boot: → the harness's first connection to its socket: python start-up, imports, stores;
- ready: → the harness is `waiting` (its first `recv` parked) — the figure the target is about;
- page: → the harness's page socket (`web.sock`) exists (its bind time);
- idle RSS, PSS and USS (private pages: what one more agent really adds), summed over every
  process in the agent's cgroup (else the sandbox's process tree) once it is parked again after
  its kick turn; the Claude CLI runs only during turns, so it is not in the figure.

Outside any sandbox, the same python's start-up and the harness's imports are timed too, so the
report can say which part of `boot` dominates.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from hyperhive.clock import parse_iso
from hyperhive.db import connect_foreign_ro
from hyperhive.errors import Unavailable

TARGET_READY_MS = 300.0
TARGET_RSS_MB = 40.0
WAIT = 120.0  # seconds any one step may take before the bench gives up
HOST_RUNS = 5

# What the harness process imports: its start path (everything before it connects), then the
# agent page's stack, loaded on the page's first request; the CLI's entry point for contrast
# (the harness does not start through it).
BARE, START, PAGE, ENTRY = (
    "python start-up (`-c pass`)",
    "harness start path",
    "harness + page (first page view)",
    "CLI entry (`hyperhive.cli.main`)",
)
IMPORTS = {
    BARE: "pass",
    START: "import hyperhive.harness.main",
    PAGE: (
        "import hyperhive.harness.main\n"
        "from hyperhive.harness.web import installed_page\ninstalled_page()"
    ),
    ENTRY: "import hyperhive.cli.main",
}


@dataclass(frozen=True)
class Spread:
    median: float
    min: float
    max: float

    @classmethod
    def of(cls, values: Iterable[float]) -> Spread:
        v = list(values)
        return cls(statistics.median(v), min(v), max(v)) if v else cls(*(3 * [float("nan")]))

    def fmt(self, unit: str, digits: int = 0) -> str:
        return (
            f"median {self.median:.{digits}f} {unit}  "
            f"(min {self.min:.{digits}f}, max {self.max:.{digits}f})"
        )


@dataclass(frozen=True)
class ImportCost:
    cpu_ms: float  # user + system CPU of the child: what it costs, whatever the load
    wall_ms: float  # what it took on this machine right now
    peak_mb: float  # the child's peak RSS


@dataclass
class AgentSample:
    """One agent; every `*_ms` counts from the `hive.spawn` call."""

    name: str
    launch_ms: float
    connected_ms: float
    ready_ms: float
    page_ms: float = 0.0
    config_ms: float = 0.0  # a new agent's config repo (seed + apply), timed on a twin name
    rss_mb: float = 0.0
    pss_mb: float = 0.0
    uss_mb: float = 0.0
    processes: dict[str, float] = field(default_factory=dict)  # "pid comm" -> RSS MB


@dataclass
class SpawnResult:
    agents: int
    cpus: int
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]
    samples: list[AgentSample]
    host_imports: dict[str, ImportCost]

    @property
    def ready(self) -> Spread:
        return Spread.of(s.ready_ms for s in self.samples)

    @property
    def rss(self) -> Spread:
        return Spread.of(s.rss_mb for s in self.samples)

    def to_json(self) -> str:
        body: dict[str, Any] = asdict(self)
        for key in ("ready", "rss"):
            body[key] = asdict(getattr(self, key))
        body["pss"] = asdict(Spread.of(s.pss_mb for s in self.samples))
        body["uss"] = asdict(Spread.of(s.uss_mb for s in self.samples))
        body["targets"] = {"ready_ms": TARGET_READY_MS, "rss_mb": TARGET_RSS_MB}
        return json.dumps(body)

    def human(self) -> str:
        def verdict(spread: Spread, target: float, unit: str) -> str:
            if spread.median <= target:
                return f"meets the {target:g} {unit} target"
            return (
                f"MISSES the {target:g} {unit} target by {spread.median - target:.0f} {unit} "
                f"({spread.median / target:.1f}x)"
            )

        s = self.samples
        lines = [
            f"spawn: {self.agents} sandboxed agents (bwrap, network none), one at a time; "
            f"{self.cpus} CPUs, load {self.load_before[0]:.2f} before, "
            f"{self.load_after[0]:.2f} after",
            f"  spawn → ready (waiting)   {self.ready.fmt('ms')}: "
            + verdict(self.ready, TARGET_READY_MS, "ms"),
            f"    launch (core + bwrap)   {Spread.of(x.launch_ms for x in s).fmt('ms')}",
            f"      of it the config repo {Spread.of(x.config_ms for x in s).fmt('ms')} "
            "(git; first spawn only)",
            f"    boot (→ 1st connection) {Spread.of(x.connected_ms - x.launch_ms for x in s).fmt('ms')}",
            "    introduce (→ waiting)   "
            + Spread.of(x.ready_ms - x.connected_ms for x in s).fmt("ms"),
            f"  spawn → page up           {Spread.of(x.page_ms for x in s).fmt('ms')}",
            f"  idle RSS per agent        {self.rss.fmt('MB', 1)}: "
            + verdict(self.rss, TARGET_RSS_MB, "MB"),
            f"  idle PSS per agent        {Spread.of(x.pss_mb for x in s).fmt('MB', 1)}",
            f"  idle USS per agent        {Spread.of(x.uss_mb for x in s).fmt('MB', 1)}",
        ]
        if s and s[0].processes:
            parts = ", ".join(f"{k} {v:.1f} MB" for k, v in s[0].processes.items())
            lines.append(f"    {s[0].name}: {parts}")
        lines.append(f"  on the host, no sandbox (median of {HOST_RUNS}):")
        for case, c in self.host_imports.items():
            lines.append(
                f"    {case:<34} {c.cpu_ms:5.0f} ms CPU  {c.wall_ms:5.0f} ms wall  "
                f"{c.peak_mb:5.1f} MB peak RSS"
            )
        got = self.host_imports
        if all(k in got for k in (BARE, START, PAGE)):
            bare, start, page = got[BARE], got[START], got[PAGE]
            lines.append(
                f"    → the harness imports for {start.cpu_ms - bare.cpu_ms:.0f} ms CPU before it "
                f"can connect; a first page view adds {page.cpu_ms - start.cpu_ms:.0f} ms and "
                f"{page.peak_mb - start.peak_mb:.1f} MB"
            )
        return "\n".join(lines)


# -- measuring --------------------------------------------------------------------------------


def _events(state_dir: Path) -> list[tuple[int, str, str, dict[str, Any]]]:
    """The harness's event store (id, ts, kind, payload), oldest first; [] before it exists."""
    path = state_dir / "hyperhive-events.sqlite"
    if not path.exists():
        return []
    try:
        conn = connect_foreign_ro(path)  # never creates the harness's -shm as root
        try:
            rows = conn.execute("SELECT id, ts, kind, payload_json FROM events ORDER BY id")
            return [(r[0], r[1], r[2], json.loads(r[3])) for r in rows]
        finally:
            conn.close()
    except sqlite3.Error:
        return []  # being created right now: look again


def _waiting(events: list[tuple[int, str, str, dict[str, Any]]], after_turn: bool) -> str | None:
    """Timestamp of the first `waiting` state (after a finished turn, if asked)."""
    seen_turn = not after_turn
    for _id, ts, kind, payload in events:
        if kind == "turn_end":
            seen_turn = True
        elif seen_turn and kind == "state" and payload.get("state") == "waiting":
            return ts
    return None


def parked(state_dir: Path, after_turn: bool) -> Callable[[], str | None]:
    return lambda: _waiting(_events(state_dir), after_turn)


async def _until(check: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + WAIT
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise Unavailable(f"bench spawn: timed out after {WAIT:g} s waiting for {what}")
        await asyncio.sleep(0.01)


def sandbox_pids(log_dir: Path) -> list[int]:
    """Every process of an agent's sandbox: its cgroup's members, else the launcher's tree."""
    try:
        record = json.loads((log_dir / "runtime.json").read_text())
    except (OSError, ValueError):
        return []
    pids: set[int] = set()
    for d in (record.get("cgroup") or {}).values():
        try:
            pids.update(int(p) for p in Path(d, "cgroup.procs").read_text().split())
        except OSError:
            continue
    if pids:
        return sorted(pids)
    todo = [record["pid"]] if isinstance(record.get("pid"), int) else []
    while todo:
        pid = todo.pop()
        if pid in pids:
            continue
        pids.add(pid)
        for task in Path(f"/proc/{pid}/task").glob("*/children"):
            try:
                todo.extend(int(c) for c in task.read_text().split())
            except OSError:
                continue
    return sorted(p for p in pids if Path(f"/proc/{p}").exists())


def _kb(path: Path, key: str) -> int:
    try:
        for line in path.read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def memory_of(pids: Iterable[int]) -> tuple[float, float, float, dict[str, float]]:
    """(RSS, PSS, USS summed, per-process RSS) of these processes, in MB."""
    rss = pss = uss = 0
    each: dict[str, float] = {}
    for pid in pids:
        proc = Path(f"/proc/{pid}")
        r = _kb(proc / "status", "VmRSS")
        rss += r
        rollup = proc / "smaps_rollup"
        pss += _kb(rollup, "Pss")
        uss += _kb(rollup, "Private_Clean") + _kb(rollup, "Private_Dirty")
        try:
            comm = (proc / "comm").read_text().strip()
        except OSError:
            comm = "?"
        each[f"{pid} {comm}"] = r / 1024
    return rss / 1024, pss / 1024, uss / 1024, each


# Appended to each case: the child's own peak RSS (ru_maxrss would count the forked parent).
PEAK = "\nprint(open('/proc/self/status').read().split('VmHWM:')[1].split()[0])"


def host_imports(runs: int = HOST_RUNS) -> dict[str, ImportCost]:
    """Medians of CPU, wall time and peak RSS of this python importing what the harness
    imports, outside any sandbox."""
    out: dict[str, ImportCost] = {}
    for case, code in IMPORTS.items():
        cpu: list[float] = []
        wall: list[float] = []
        peak: list[float] = []
        for _ in range(runs):
            t0 = time.perf_counter()
            proc = subprocess.Popen(
                [sys.executable, "-c", code + PEAK],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
            )
            assert proc.stdout is not None
            kb = proc.stdout.read()
            proc.stdout.close()
            _pid, status, usage = os.wait4(proc.pid, 0)  # this child's own CPU times
            proc.returncode = os.waitstatus_to_exitcode(status)
            wall.append((time.perf_counter() - t0) * 1000)
            cpu.append((usage.ru_utime + usage.ru_stime) * 1000)
            peak.append(int(kb or 0) / 1024)
        out[case] = ImportCost(
            statistics.median(cpu), statistics.median(wall), statistics.median(peak)
        )
    return out


# -- the run ------------------------------------------------------------------------------------


async def _run(agents: int, progress: Callable[[str], None]) -> SpawnResult:
    from hyperhive.assembly import throwaway_hive
    from hyperhive.config import Defaults, HiveConfig, ModelEndpoint
    from hyperhive.core.events import HiveEvent
    from hyperhive.paths import HivePaths
    from hyperhive.runtime.choose import sandbox_support
    from hyperhive.sim import Scenario, SimServer

    why = sandbox_support()
    if why is not None:
        raise Unavailable(f"bench spawn needs bubblewrap sandboxes: {why}")
    load_before = os.getloadavg()
    root = Path(tempfile.mkdtemp(dir="/tmp", prefix="hhbs"))
    samples: list[AgentSample] = []
    try:
        async with SimServer(Scenario.model_validate({"default": {"text": "ok"}})) as sim:
            cfg = HiveConfig(
                # idle means cold: no `claude` kept warm after the kick turn
                defaults=Defaults(runtime="bwrap", network="none", warm_seconds=0),
                model_endpoint=ModelEndpoint(base_url=f"{sim.base_url}/a/{{agent}}"),
            )
            async with throwaway_hive(HivePaths(root / "h"), cfg) as hive:
                seen: dict[tuple[str, str], float] = {}

                def listen(ev: HiveEvent) -> None:
                    agent = ev.data.get("agent")
                    if ev.kind == "transient_cleared" and ev.data.get("transient") == "spawning":
                        seen.setdefault((str(agent), "launched"), time.time())
                    elif ev.kind == "agent_connections" and ev.data.get("connections", 0) > 0:
                        seen.setdefault((str(agent), "connected"), time.time())

                hive.hub.add_listener(listen)
                try:
                    manager = hive.config.manager.name
                    progress("waiting for the manager to start and go idle")
                    await _until(parked(hive.paths.state_dir(manager), True), "the manager's kick")
                    await hive.registry.update(manager, paused=True)  # nothing competes
                    for i in range(agents):
                        name = f"bench{i}"
                        state = hive.paths.state_dir(name)
                        c0 = time.perf_counter()
                        await hive.configs.ensure_applied(f"twin{i}")
                        config_ms = (time.perf_counter() - c0) * 1000
                        t0 = time.time()
                        await hive.spawn(name)
                        ready = await _until(parked(state, False), f"{name} to be ready")
                        await _until(
                            partial(seen.__contains__, (name, "connected")), "a connection"
                        )
                        web = hive.paths.web_sock(name)
                        await _until(web.exists, f"{name}'s page")
                        sample = AgentSample(
                            name=name,
                            launch_ms=(seen[(name, "launched")] - t0) * 1000,
                            connected_ms=(seen[(name, "connected")] - t0) * 1000,
                            ready_ms=(parse_iso(ready) - t0) * 1000,
                            page_ms=(web.stat().st_mtime - t0) * 1000,
                            config_ms=config_ms,
                        )
                        samples.append(sample)
                        progress(f"{name}: ready in {sample.ready_ms:.0f} ms")
                        await _until(parked(state, True), f"{name} to answer its kick")
                    for sample in samples:  # every agent idle now: weigh them
                        pids = sandbox_pids(hive.paths.logs_dir(sample.name))
                        sample.rss_mb, sample.pss_mb, sample.uss_mb, sample.processes = memory_of(
                            pids
                        )
                finally:
                    for name in hive.registry.names():
                        try:
                            await hive.lifecycle.kill_agent(name)
                        except Exception as exc:
                            progress(f"could not kill {name}: {exc}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    progress("timing the harness's imports on the host")
    imports = host_imports()
    return SpawnResult(
        agents=agents,
        cpus=os.cpu_count() or 0,
        load_before=load_before,
        load_after=os.getloadavg(),
        samples=samples,
        host_imports=imports,
    )


def run_spawn_bench(agents: int, progress: Callable[[str], None] | None = None) -> SpawnResult:
    from hyperhive.aio import aio_run

    return aio_run(_run(agents, progress or (lambda _msg: None)))
