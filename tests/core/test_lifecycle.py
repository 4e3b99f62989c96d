"""Lifecycle through the host socket and manager socket, on the shipped fake runtime: the real
bwrap path is exercised in tests/runtime and tests/e2e."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from hyperhive.client.agent import NO_RETRY, AgentClient
from hyperhive.client.host import HostClient
from hyperhive.config import Defaults, HiveConfig
from hyperhive.core.hive import Hive
from hyperhive.errors import Conflict, Forbidden, NotFound, Unavailable
from hyperhive.paths import HivePaths
from hyperhive.runtime.fake import FakeRuntime, FakeWorld
from tests.support.lifecycle import fake_hive
from tests.support.waiting import eventually


@pytest.fixture
def world() -> FakeWorld:
    return FakeWorld()


@pytest.fixture
async def fhive(paths: HivePaths, world: FakeWorld) -> AsyncIterator[Hive]:
    cfg = HiveConfig(defaults=Defaults(runtime="fake"))
    async with fake_hive(paths, cfg, world) as h:
        yield h


async def inbox_events(hive: Hive, name: str) -> list[dict[str, Any]]:
    lease = await hive.broker.recv(name, 0, 32)
    await hive.broker.ack(lease)
    return [json.loads(m.body) for m in lease.messages if m.kind == "event"]


async def test_first_start_brings_the_manager_up(fhive: Hive, world: FakeWorld) -> None:
    assert world.agents["manager"].running
    assert fhive.lifecycle.desired("manager") == "running"
    events = await inbox_events(fhive, "manager")
    assert [e["event"] for e in events] == ["kick"]


async def test_spawn_starts_and_kicks(fhive: Hive, world: FakeWorld) -> None:
    host = HostClient(fhive.paths.host_sock)
    await host.call("spawn", name="alice")
    assert world.agents["alice"].running
    spec = world.agents["alice"].spec
    assert spec.state_dir == fhive.paths.state_dir("alice")
    assert spec.sock_dir == fhive.paths.sock_dir("alice")
    assert spec.argv[1:3] == ["-m", "hyperhive.harness.main"]
    kicks = await inbox_events(fhive, "alice")
    assert kicks[0]["event"] == "kick" and "/state" in kicks[0]["note"]
    rows = {r["name"]: r for r in (await host.call("agent_status"))["agent_statuses"]}
    assert rows["alice"]["running"] is True and rows["alice"]["failed"] is False


async def test_transient_is_visible_then_cleared(fhive: Hive) -> None:
    await fhive.spawn("alice")
    since = fhive.hub.last_seq
    gate = asyncio.Event()
    rt = fhive.lifecycle.runtime_for("alice")
    original = rt.stop

    async def slow_stop(name: str, timeout: float = 30.0) -> Any:
        await gate.wait()
        return await original(name, timeout)

    rt.stop = slow_stop  # type: ignore[method-assign]
    host = HostClient(fhive.paths.host_sock)
    task = asyncio.create_task(host.call("restart", name="alice"))
    await eventually(lambda: "alice" in fhive.lifecycle.transients, what="restart in flight")
    rows = {r["name"]: r for r in (await host.call("agent_status"))["agent_statuses"]}
    assert rows["alice"]["transient"] == "restarting"
    with pytest.raises(Conflict, match="busy"):
        await host.call("kill", name="alice")
    gate.set()
    await task
    kinds = [(e.kind, e.data.get("transient")) for e in fhive.hub.history(since)]
    assert ("transient_set", "restarting") in kinds and ("transient_cleared", "restarting") in kinds
    rows = {r["name"]: r for r in (await host.call("agent_status"))["agent_statuses"]}
    assert "transient" not in rows["alice"]


async def test_stop_start_and_desired_state(fhive: Hive, world: FakeWorld) -> None:
    host = HostClient(fhive.paths.host_sock)
    await host.call("spawn", name="alice")
    await host.call("stop", scope={"agent_names": ["alice"]}, graceful=True)
    assert not world.agents["alice"].running
    assert fhive.lifecycle.desired("alice") == "stopped"
    await host.call("start", scope={"agent_names": ["alice"]})
    assert world.agents["alice"].running
    answer = await host.request_raw({"cmd": "start", "scope": {"agent_names": ["ghost"]}})
    assert answer["ok"] is False and "not managed" in answer["error"]


async def test_daemon_restart_adopts_instead_of_duplicating(
    paths: HivePaths, world: FakeWorld
) -> None:
    cfg = HiveConfig(defaults=Defaults(runtime="fake"))
    runtimes: list[FakeRuntime] = []
    async with fake_hive(paths, cfg, world, runtimes) as h:
        await h.spawn("alice")
        pid = world.agents["alice"].pid
    runtimes.clear()
    async with fake_hive(paths, cfg, world, runtimes) as h:
        assert world.agents["alice"].pid == pid  # same sandbox, adopted
        calls = [c for rt in runtimes for c in rt.calls]
        assert ("adopt", "alice") in calls and ("start", "alice") not in calls
        world.agents["alice"].exit_code = 1  # it died while the daemon was down
    async with fake_hive(paths, cfg, world) as h:
        assert world.agents["alice"].running  # desired=running: started again on boot
        assert world.agents["alice"].pid != pid


async def test_crash_reported_to_manager_once(fhive: Hive, world: FakeWorld) -> None:
    await fhive.spawn("alice")
    await fhive.crash_watch.tick()  # seeds
    await inbox_events(fhive, "manager")
    rt = fhive.lifecycle.runtime_for("alice")
    assert isinstance(rt, FakeRuntime)
    rt.exit("alice", 137)
    await fhive.crash_watch.tick()
    await fhive.crash_watch.tick()
    events = await inbox_events(fhive, "manager")
    crashes = [e for e in events if e["event"] == "container_crash"]
    assert len(crashes) == 1 and crashes[0]["agent"] == "alice" and crashes[0]["exit_code"] == 137
    rows = {
        r["name"]: r
        for r in (await HostClient(fhive.paths.host_sock).call("agent_status"))["agent_statuses"]
    }
    assert rows["alice"]["failed"] is True and rows["alice"]["running"] is False


async def test_requested_stop_is_not_a_crash(fhive: Hive) -> None:
    await fhive.spawn("alice")
    await fhive.crash_watch.tick()
    await inbox_events(fhive, "manager")
    await fhive.lifecycle.stop_agent("alice")
    await fhive.crash_watch.tick()
    assert not [e for e in await inbox_events(fhive, "manager") if e["event"] == "container_crash"]


async def test_manager_tools_and_self_guard(fhive: Hive, world: FakeWorld) -> None:
    await fhive.spawn("alice")
    await inbox_events(fhive, "manager")
    async with AgentClient(fhive.paths.agent_sock("manager"), retry=NO_RETRY) as mgr:
        await mgr.call("kill", name="alice")
        assert not world.agents["alice"].running
        assert [e["event"] for e in await inbox_events(fhive, "manager")] == ["killed"]
        await mgr.call("start", name="alice")
        await mgr.call("restart", name="alice")
        await mgr.call("update", name="alice")
        assert world.agents["alice"].running
        for verb in ("kill", "start", "restart", "update"):
            with pytest.raises(Forbidden, match="yourself"):
                await mgr.call(verb, name="manager")
    async with AgentClient(fhive.paths.agent_sock("alice"), retry=NO_RETRY) as alice:
        answer = await alice.request_answer({"cmd": "kill", "name": "manager"})
        assert answer.body["ok"] is False and "unknown verb" in answer.body["error"]


async def test_destroy_keeps_state_purge_removes(fhive: Hive) -> None:
    host = HostClient(fhive.paths.host_sock)
    await host.call("spawn", name="alice")
    notes = fhive.paths.state_dir("alice") / "notes.md"
    notes.parent.mkdir(parents=True, exist_ok=True)
    notes.write_text("remember me")
    await host.call("destroy", name="alice")
    assert "alice" not in (await host.call("list"))["agents"]
    tombs = (await host.call("tombstones"))["tombstones"]
    assert [t["name"] for t in tombs] == ["alice"] and tombs[0]["size_bytes"] >= len("remember me")
    await host.call("spawn", name="alice")  # revive: same name, kept state
    assert notes.read_text() == "remember me"
    answer = await host.request_raw({"cmd": "purge", "name": "alice"})
    assert answer["ok"] is False and "live agent" in answer["error"]
    await host.call("destroy", name="alice", purge=True)
    assert not fhive.paths.agent_dir("alice").exists()
    assert (await host.call("tombstones"))["tombstones"] == []
    answer = await host.request_raw({"cmd": "destroy", "name": "manager"})
    assert answer["ok"] is False


@pytest.mark.parametrize(
    "verb", ["restart", "kill", "destroy", "rebuild", "logs", "purge", "shell_argv"]
)
async def test_bad_names_refused(fhive: Hive, verb: str) -> None:
    host = HostClient(fhive.paths.host_sock)
    for name in ("../etc", "A", "a/b"):
        answer = await host.request_raw({"cmd": verb, "name": name})
        assert answer["ok"] is False and answer["code"] in ("invalid_name", "bad_request"), (
            verb,
            name,
            answer,
        )


async def test_logs_are_confined(fhive: Hive) -> None:
    await fhive.spawn("alice")
    log = fhive.paths.logs_dir("alice") / "harness.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("".join(f"line {i}\n" for i in range(10)))
    host = HostClient(fhive.paths.host_sock)
    answer = await host.call("logs", name="alice", lines=3)
    assert answer["lines"] == ["line 7", "line 8", "line 9"]
    bad = await host.request_raw({"cmd": "logs", "name": "alice", "source": "../../etc/passwd"})
    assert bad["ok"] is False
    bad = await host.request_raw({"cmd": "logs", "name": "alice", "lines": 5001})
    assert bad["ok"] is False
    with pytest.raises(NotFound):
        await host.call("logs", name="ghost")


async def apply_config(hive: Hive, name: str, toml: str) -> None:
    """Give `name` an applied agent.toml (as an approved apply_commit would)."""
    from tests.support.git import commit

    if not hive.configs.has_repo(name):  # type: ignore[attr-defined]
        await hive.configs.seed(name)  # type: ignore[attr-defined]
    sha = commit(hive.paths.config_repo(name), {"agent.toml": toml}, "runtime")
    await hive.configs.apply(name, sha)  # type: ignore[attr-defined]
    hive.agent_configs.invalidate(name)


async def test_agent_toml_runtime_is_used_at_spawn(fhive: Hive, world: FakeWorld) -> None:
    await apply_config(fhive, "alice", 'runtime = "process"\n')
    await HostClient(fhive.paths.host_sock).call("spawn", name="alice")
    assert fhive.registry.require("alice").runtime == "process"
    assert world.agents["alice"].running
    await apply_config(fhive, "bob", 'runtime = "process"\n')
    with pytest.raises(Conflict, match=r"agent\.toml"):  # an explicit runtime that contradicts it
        await HostClient(fhive.paths.host_sock).call("spawn", name="bob", runtime="fake")


async def test_revived_tombstone_keeps_its_configured_runtime(
    fhive: Hive, world: FakeWorld
) -> None:
    host = HostClient(fhive.paths.host_sock)
    await apply_config(fhive, "alice", 'runtime = "process"\n')
    await host.call("spawn", name="alice")
    await host.call("destroy", name="alice")
    await host.call("spawn", name="alice")  # revive: the kept applied config decides
    assert fhive.registry.require("alice").runtime == "process"


async def test_rebuild_moves_the_agent_to_a_newly_configured_runtime(
    fhive: Hive, world: FakeWorld
) -> None:
    await fhive.spawn("alice")
    assert fhive.registry.require("alice").runtime == "fake"
    await apply_config(fhive, "alice", 'runtime = "process"\n')
    await HostClient(fhive.paths.host_sock).call("rebuild", name="alice")
    assert fhive.registry.require("alice").runtime == "process"
    assert world.agents["alice"].running


async def test_lifecycle_verbs_refuse_an_external_agent(fhive: Hive) -> None:
    """Nothing of an external agent runs under the hive: start/stop/restart/kill/rebuild must
    say so instead of answering ok (and restart must not queue a kick)."""
    host = HostClient(fhive.paths.host_sock)
    await host.call("spawn", name="ext", runtime="external")
    requests: list[dict[str, Any]] = [
        {"cmd": "start", "scope": {"agent_names": ["ext"]}},
        {"cmd": "stop", "scope": {"agent_names": ["ext"]}, "graceful": True},
        {"cmd": "restart", "name": "ext"},
        {"cmd": "kill", "name": "ext"},
        {"cmd": "rebuild", "name": "ext"},
    ]
    for req in requests:
        answer = await host.request_raw(req)
        assert answer["ok"] is False and answer["code"] == "not_supported", (req, answer)
        assert "external" in answer["error"]
    assert await inbox_events(fhive, "ext") == []
    assert fhive.lifecycle.desired("ext") == "stopped"
    await host.call("destroy", name="ext")  # destroy still works: it unregisters


async def test_applying_a_config_to_an_external_agent_says_it_was_not_rebuilt(
    fhive: Hive,
) -> None:
    from tests.support.git import commit

    host = HostClient(fhive.paths.host_sock)
    await host.call("spawn", name="ext", runtime="external")
    await fhive.configs.seed("ext")  # type: ignore[attr-defined]
    sha = commit(fhive.paths.config_repo("ext"), {"agent.toml": 'model = "opus"\n'})
    row = await fhive.approvals.request_apply_commit(  # type: ignore[attr-defined]
        "ext", sha, requested_by="manager"
    )
    await host.call("approve", id=row.id)
    done = await fhive.approvals.get(row.id)  # type: ignore[attr-defined]
    assert done.status == "approved" and "not rebuilt" in done.note and "external" in done.note


async def test_a_config_that_moves_an_agent_outside_launches_nothing(
    fhive: Hive, world: FakeWorld
) -> None:
    await fhive.spawn("alice")
    await inbox_events(fhive, "alice")  # the spawn's kick
    await apply_config(fhive, "alice", 'runtime = "external"\n')
    await HostClient(fhive.paths.host_sock).call("rebuild", name="alice")
    assert fhive.registry.require("alice").runtime == "external"
    assert not world.agents["alice"].running  # the old sandbox was stopped
    assert await inbox_events(fhive, "alice") == []  # no "you were just restarted"
    assert fhive.lifecycle.desired("alice") == "stopped"


async def test_oom_kill_inside_a_running_agent_is_reported(
    fhive: Hive, world: FakeWorld, caplog: pytest.LogCaptureFixture
) -> None:
    """A process OOM-killed in the sandbox while the agent keeps running: status says so,
    a log line with action `oom_kill`, one `container_oom` to the manager."""
    await fhive.spawn("alice")
    await fhive.crash_watch.tick()  # seeds
    await inbox_events(fhive, "manager")
    world.agents["alice"].oom_kills = 1  # what the cgroup's counter says after an OOM kill
    with caplog.at_level(logging.WARNING):
        await fhive.crash_watch.tick()
        await fhive.crash_watch.tick()
    events = await inbox_events(fhive, "manager")
    ooms = [e for e in events if e["event"] == "container_oom"]
    assert len(ooms) == 1 and ooms[0]["agent"] == "alice" and ooms[0]["oom_kills"] == 1
    assert ooms[0]["running"] is True
    assert [r for r in caplog.records if getattr(r, "action", "") == "oom_kill"]
    rows = {
        r["name"]: r
        for r in (await HostClient(fhive.paths.host_sock).call("agent_status"))["agent_statuses"]
    }
    assert rows["alice"]["oom_kills"] == 1 and rows["alice"]["running"] is True


async def test_spec_carries_the_model_failure_settings(fhive: Hive, world: FakeWorld) -> None:
    """Retries, attempts and the turn timeout reach the harness; agent.toml's
    turn_timeout_seconds overrides the hive default."""
    await fhive.spawn("alice")
    env = world.agents["alice"].spec.env
    assert env["HIVE_MODEL_RETRIES"] == "4" and env["HIVE_TURN_ATTEMPTS"] == "3"
    assert env["HIVE_RETRY_WAIT"] == "30.0" and env["HIVE_TURN_TIMEOUT"] == "1800.0"
    applied = fhive.paths.applied_dir("alice") / "agent.toml"
    applied.write_text("turn_timeout_seconds = 90\n" + applied.read_text())  # top level
    fhive.agent_configs.invalidate("alice")
    assert fhive.lifecycle.spec("alice").env["HIVE_TURN_TIMEOUT"] == "90.0"


async def test_a_start_that_fails_at_boot_is_logged(
    paths: HivePaths,
    world: FakeWorld,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cfg = HiveConfig(defaults=Defaults(runtime="fake"))
    async with fake_hive(paths, cfg, world) as h:
        await h.spawn("alice")
    world.agents["alice"].exit_code = 1  # it died while the daemon was down

    async def refuse(self: FakeRuntime, spec: Any) -> Any:
        raise Unavailable("no sandbox for you")

    monkeypatch.setattr(FakeRuntime, "start", refuse)
    with caplog.at_level(logging.WARNING, logger="hyperhive.core.lifecycle"):
        async with fake_hive(paths, cfg, world):
            pass
    failed = [r for r in caplog.records if getattr(r, "action", "") == "boot_start_failed"]
    assert {getattr(r, "agent", "") for r in failed} >= {"alice"}
    assert any("no sandbox for you" in r.getMessage() for r in failed)
