"""Sandbox start-up benchmark: `python -m hyperhive.bench.sandbox [N]`.

`measure_start(n)` starts `python3 -c pass` in n fresh bwrap sandboxes one after another and
returns the median seconds from `BwrapRuntime.start` to the sandboxed process having run (its
exit observed) — cgroup creation, bwrap set-up, the uid drop and python's own start included.
`measure_bare(n)` is the same command without a sandbox, for comparison.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hyperhive.runtime.base import LaunchSpec, NetworkMode
from hyperhive.runtime.bwrap import BwrapRuntime

BENCH_UID = 299990
PYTHON3 = "/usr/bin/python3"


async def _measure(n: int, python: str, network: NetworkMode) -> float:
    root = Path(tempfile.mkdtemp(dir="/tmp", prefix="hhb"))
    os.chmod(root, 0o755)
    times: list[float] = []
    try:
        async with BwrapRuntime() as rt:
            for i in range(n):
                base = root / str(i)
                spec = LaunchSpec(
                    name=f"bench-{os.getpid()}-{i}",
                    argv=[python, "-c", "pass"],
                    state_dir=base / "state",
                    sock_dir=base / "sock",
                    shared_dir=root / "shared",
                    log_dir=base / "logs",
                    uid=BENCH_UID if os.geteuid() == 0 else None,
                    network=network,
                )
                t0 = time.perf_counter()
                await rt.start(spec)
                code = await rt.wait(spec.name)
                times.append(time.perf_counter() - t0)
                if code != 0:
                    raise RuntimeError(f"sandboxed {python} exited {code}: see {spec.log_dir}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return statistics.median(times)


def measure_start(n: int = 20, *, python: str = PYTHON3, network: NetworkMode = "none") -> float:
    """Median seconds to start a sandbox and run `python -c pass` in it."""
    return asyncio.run(_measure(n, python, network))


def measure_bare(n: int = 20, *, python: str = PYTHON3) -> float:
    """Median seconds for `python -c pass` without any sandbox."""
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run([python, "-c", "pass"], check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    print(f"bare python3 -c pass:            {measure_bare(n) * 1000:6.1f} ms")
    print(f"bwrap sandbox, network=none:     {measure_start(n) * 1000:6.1f} ms")
    if os.geteuid() == 0:
        print(
            f"bwrap sandbox, network=egress:   {measure_start(n, network='egress') * 1000:6.1f} ms"
        )


if __name__ == "__main__":
    main()
