"""Per-agent cgroups on the real hierarchy: limits written, membership, freeze/kill, removal;
and the logged degradation when no writable hierarchy exists."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hyperhive.runtime.base import Limits
from hyperhive.runtime.cgroups import AgentCgroup, cgroup_version
from hyperhive.runtime.hostproc import pid_alive
from tests.runtime.conftest import require_cgroups


@pytest.fixture
async def cgroup() -> AsyncIterator[AgentCgroup]:
    require_cgroups()
    cg = AgentCgroup(f"tcg-{secrets.token_hex(3)}")
    try:
        yield cg
    finally:
        if cg.adopt():
            await cg.kill_all()
        await cg.remove()


async def test_limits_membership_freeze_kill_remove(cgroup: AgentCgroup) -> None:
    assert cgroup.create(Limits(memory_mb=128, pids=16, cpu_percent=50))
    if cgroup.version == 1:
        d = cgroup.dirs
        assert int((d["memory"] / "memory.limit_in_bytes").read_text()) == 128 * 1024 * 1024
        assert (d["pids"] / "pids.max").read_text().strip() == "16"
        assert (d["cpu"] / "cpu.cfs_quota_us").read_text().strip() == "50000"
    else:
        d = cgroup.dirs["unified"]
        assert (d / "pids.max").read_text().strip() == "16"
    proc = await asyncio.create_subprocess_exec("sleep", "300")
    try:
        cgroup.attach(proc.pid)
        assert cgroup.contains(proc.pid)
        assert await cgroup.freeze()
        cgroup.thaw()
        assert await cgroup.kill_all() == 1
        assert await asyncio.wait_for(proc.wait(), 10) == -9
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert not pid_alive(proc.pid)
    await cgroup.remove()
    assert not cgroup.exists()
    await cgroup.remove()  # idempotent


async def test_removing_the_last_group_of_a_scope_removes_the_scope() -> None:
    """A hive's agents live under `hyperhive/<scope>/`; the scope goes with its last agent,
    not before."""
    require_cgroups()
    scope = f"hyperhive/tscope-{secrets.token_hex(3)}"
    a, b = AgentCgroup("a", parent=scope), AgentCgroup("b", parent=scope)
    try:
        assert a.create(Limits()) and b.create(Limits())
        scope_dirs = {d.parent for d in [*a.dirs.values(), *b.dirs.values()]}
        await a.remove()
        assert all(d.is_dir() for d in scope_dirs)  # b still lives there
        await b.remove()
        assert not any(d.exists() for d in scope_dirs)
    finally:
        await a.remove()
        await b.remove()


async def test_limits_can_be_lifted(cgroup: AgentCgroup) -> None:
    assert cgroup.create(Limits(memory_mb=64, pids=8))
    cgroup.set_limits(Limits())
    if cgroup.version == 1:
        assert (cgroup.dirs["pids"] / "pids.max").read_text().strip() == "max"
        assert int((cgroup.dirs["memory"] / "memory.limit_in_bytes").read_text()) > 2**40


async def test_degrades_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cg = AgentCgroup("tcg-none", root=tmp_path)  # no hierarchy here
    assert cgroup_version(tmp_path) == 0
    with caplog.at_level(logging.WARNING):
        assert not cg.create(Limits(memory_mb=64))
    rec = [r for r in caplog.records if getattr(r, "action", "") == "cgroup_degraded"]
    assert rec and rec[0].agent == "tcg-none" and "NOT enforced" in rec[0].getMessage()
    assert cg.procs_files() == [] and cg.procs() == []
    assert await cg.kill_all() == 0
    await cg.remove()


def test_usage_reads_memory_and_cpu_of_the_group(short_tmp: Path) -> None:
    """`usage()` (for /metrics) on a v2 tree and a v1 tree laid out as the kernel does."""
    v2 = short_tmp / "v2"
    (v2 / "hyperhive" / "alice").mkdir(parents=True)
    (v2 / "cgroup.controllers").write_text("cpu memory pids\n")
    (v2 / "hyperhive" / "alice" / "memory.current").write_text("1048576\n")
    (v2 / "hyperhive" / "alice" / "cpu.stat").write_text("usage_usec 2500000\nuser_usec 1\n")
    assert AgentCgroup("alice", root=v2).usage() == {"memory_bytes": 1048576.0, "cpu_seconds": 2.5}
    v1 = short_tmp / "v1"
    for c in ("memory", "cpu"):
        (v1 / c / "hyperhive" / "bob").mkdir(parents=True)
        (v1 / c / "cgroup.procs").write_text("")
    (v1 / "memory" / "hyperhive" / "bob" / "memory.usage_in_bytes").write_text("4096\n")
    (v1 / "cpu" / "hyperhive" / "bob" / "cpuacct.usage").write_text("3000000000\n")
    assert AgentCgroup("bob", root=v1).usage() == {"memory_bytes": 4096.0, "cpu_seconds": 3.0}
    (v1 / "cpu" / "hyperhive" / "bob" / "cpuacct.usage").unlink()
    assert AgentCgroup("bob", root=v1).usage() == {"memory_bytes": 4096.0}
