"""Fixtures for runtime tests: short dirs, agent specs with unique names and uids, and a
finalizer that kills every sandbox, cgroup and netns a test created (even from a crashed
"daemon" subprocess)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from hyperhive.runtime.base import LaunchSpec, Limits
from hyperhive.runtime.bwrap import BwrapRuntime
from hyperhive.runtime.cgroups import AgentCgroup, cgroup_version
from hyperhive.runtime.choose import egress_support, sandbox_support
from hyperhive.runtime.netns import NETNS_DIR, netns_name
from hyperhive.runtime.process import ProcessRuntime

PY = sys.executable  # the venv python: its paths are bound read-only into every sandbox


def require_sandbox() -> None:
    why = sandbox_support()
    if why is not None:
        print(f"SKIP sandbox test: {why}")
        pytest.skip(f"sandboxes unavailable here: {why}")


def require_cgroups() -> None:
    if os.geteuid() != 0 or cgroup_version() == 0:
        why = "not root" if os.geteuid() != 0 else "no cgroup hierarchy mounted"
        print(f"SKIP cgroup test: {why}")
        pytest.skip(f"cgroup limits unavailable here: {why}")


def require_egress() -> None:
    why = egress_support()
    if why is not None:
        print(f"SKIP egress test: {why}")
        pytest.skip(f"egress networking unavailable here: {why}")


def spec_to_json(spec: LaunchSpec) -> str:
    def conv(v: Any) -> Any:
        if isinstance(v, Path):
            return str(v)
        if isinstance(v, list | tuple):
            return [conv(x) for x in v]
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()}
        return v

    return json.dumps({k: conv(v) for k, v in asdict(spec).items()})


def spec_from_json(text: str) -> LaunchSpec:
    d = json.loads(text)
    for key in ("state_dir", "sock_dir", "shared_dir", "log_dir"):
        d[key] = Path(d[key])
    d["limits"] = Limits(**d["limits"])
    d["ro_binds"] = [(Path(a), Path(b)) for a, b in d["ro_binds"]]
    d["rw_binds"] = [(Path(a), Path(b)) for a, b in d["rw_binds"]]
    return LaunchSpec(**d)


class Agents:
    """Makes specs with unique names/uids under one short temp dir and remembers them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.specs: list[LaunchSpec] = []
        self._uid = 230000 + (os.getpid() % 1000) * 20

    def spec(self, argv: list[str], *, short: str = "a", **kw: Any) -> LaunchSpec:
        name = f"t{short}-{secrets.token_hex(3)}"
        base = self.root / name
        self._uid += 1
        spec = LaunchSpec(
            name=name,
            argv=argv,
            state_dir=base / "state",
            sock_dir=base / "sock",
            shared_dir=self.root / "shared",
            log_dir=base / "logs",
            uid=kw.pop("uid", self._uid if os.geteuid() == 0 else None),
            **kw,
        )
        for d in (spec.state_dir, spec.sock_dir, spec.shared_dir, spec.log_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.specs.append(spec)
        return spec

    def log(self, spec: LaunchSpec) -> str:
        try:
            return (spec.log_dir / "harness.log").read_text()
        except FileNotFoundError:
            return ""

    async def cleanup(self, runtime_cls: type[BwrapRuntime] | type[ProcessRuntime]) -> None:
        async with runtime_cls() as rt:
            for spec in self.specs:
                with contextlib.suppress(Exception):
                    st = await rt.adopt(spec)
                    if st.running:
                        await rt.kill(spec.name)
        for spec in self.specs:
            cg = AgentCgroup(spec.name)
            if cg.adopt():
                await cg.kill_all()
            await cg.remove()
            ns = NETNS_DIR / netns_name(spec.name)
            if ns.exists():
                proc = await asyncio.create_subprocess_exec("ip", "netns", "delete", ns.name)
                await proc.wait()


@pytest.fixture
def hh_dir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(dir="/tmp", prefix="hh"))
    os.chmod(d, 0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
async def agents(hh_dir: Path) -> AsyncIterator[Agents]:
    a = Agents(hh_dir)
    try:
        yield a
    finally:
        await a.cleanup(BwrapRuntime if sandbox_support() is None else ProcessRuntime)


@pytest.fixture
async def bwrap_rt(agents: Agents) -> AsyncIterator[BwrapRuntime]:
    require_sandbox()
    async with BwrapRuntime() as rt:
        try:
            yield rt
        finally:
            for spec in agents.specs:
                with contextlib.suppress(Exception):
                    await rt.kill(spec.name)


@pytest.fixture
async def process_rt(agents: Agents) -> AsyncIterator[ProcessRuntime]:
    async with ProcessRuntime() as rt:
        try:
            yield rt
        finally:
            for spec in agents.specs:
                with contextlib.suppress(Exception):
                    await rt.kill(spec.name)


DAEMON = r"""
import asyncio, sys
sys.path.insert(0, sys.argv[3])
from conftest import spec_from_json
from hyperhive.runtime.choose import make_runtime

async def main():
    rt = make_runtime(sys.argv[1])
    st = await rt.start(spec_from_json(sys.argv[2]))
    print("STARTED", st.pid, flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


async def start_in_daemon(runtime: str, spec: LaunchSpec) -> tuple[asyncio.subprocess.Process, int]:
    """Start `spec` from a separate "daemon" process; returns it (still running) and the pid."""
    proc = await asyncio.create_subprocess_exec(
        PY,
        "-c",
        DAEMON,
        runtime,
        spec_to_json(spec),
        str(Path(__file__).parent),
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 30)
    assert line.startswith(b"STARTED"), line
    return proc, int(line.split()[1])
