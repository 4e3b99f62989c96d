"""Approvals end to end through real sockets, real git and real sqlite: request → pin → approve
→ act, with a recording stand-in for `hive.lifecycle` (one test runs the real lifecycle on the
fake runtime)."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hyperhive.agentconfig import TEMPLATE
from hyperhive.client.agent import NO_RETRY, AgentClient
from hyperhive.client.host import HostClient
from hyperhive.config import Defaults, HiveConfig
from hyperhive.core.hive import Hive
from hyperhive.errors import BadRequest, Conflict, Forbidden, HiveError, NotFound
from hyperhive.paths import HivePaths
from tests.support.git import commit, git


class RecordingLifecycle:
    """Stands in for `hive.lifecycle`: records spawn/rebuild with the applied sha at call time;
    everything else goes to the real lifecycle."""

    def __init__(self, hive: Hive) -> None:
        self.hive = hive
        self.real = hive.lifecycle
        self.calls: list[tuple[str, str, str | None]] = []
        self.fail_rebuild: str | None = None

    async def spawn_agent(
        self, name: str, *, requested_by: str | None = None, runtime: str | None = None
    ) -> None:
        self.calls.append(("spawn", name, self.hive.configs.applied_sha(name)))  # type: ignore[attr-defined]
        await self.hive.registry.register(name, "agent", parent=requested_by)
        await self.hive.open_socket(name)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.real, attr)

    async def rebuild(self, name: str) -> None:
        self.calls.append(("rebuild", name, self.hive.configs.applied_sha(name)))  # type: ignore[attr-defined]
        if self.fail_rebuild:
            raise HiveError(self.fail_rebuild)


@pytest.fixture
async def lc(hive: Hive) -> RecordingLifecycle:
    fake = RecordingLifecycle(hive)
    hive.approvals.lifecycle = fake
    return fake


def host(hive: Hive) -> HostClient:
    return HostClient(hive.paths.host_sock)


def mgr(hive: Hive) -> AgentClient:
    return AgentClient(hive.paths.agent_sock("manager"), retry=NO_RETRY)


async def events(hive: Hive, name: str) -> list[dict[str, Any]]:
    """Take the `system` events in `name`'s inbox (operator: its unread rows)."""
    lease = await hive.broker.recv(name, 0, 32)
    await hive.broker.ack(lease)
    return [json.loads(m.body) for m in lease.messages if m.kind == "event"]


async def raw_line(hive: Hive, line: bytes) -> bytes:
    """One request on the host socket, the answer line exactly as sent."""
    reader, writer = await asyncio.open_unix_connection(str(hive.paths.host_sock))
    try:
        writer.write(line)
        await writer.drain()
        return await reader.readline()
    finally:
        writer.close()


async def register(hive: Hive, *names: str) -> None:
    """An agent that exists (bypassing any lifecycle, so `lc.calls` stays about approvals)."""
    for name in names:
        await hive.registry.register(name, "agent")
        await hive.open_socket(name)


async def seeded(hive: Hive, name: str) -> Path:
    await hive.configs.seed(name)  # type: ignore[attr-defined]
    return hive.paths.config_repo(name)


# -- the flows -----------------------------------------------------------------------------------


async def test_init_config_then_config_ready(hive: Hive, lc: RecordingLifecycle) -> None:
    async with mgr(hive) as m:
        queued = await m.call("request_init_config", name="alice", description="a helper")
        aid = queued["id"]
        assert queued["approval"]["status"] == "pending"
        threads = (await m.call("get_open_threads"))["threads"]
        assert [t["id"] for t in threads] == [f"a:{aid}"] and "alice" in threads[0]["summary"]
        with pytest.raises(Conflict, match=f"already waiting as approval #{aid}"):
            await m.call("request_init_config", name="alice")
    assert not hive.paths.config_repo("alice").exists()  # nothing happens before approval

    answer = await host(hive).call("approve", id=aid, note="go")
    assert answer["approval"]["status"] == "approved"
    repo = hive.paths.config_repo("alice")
    assert (repo / "agent.toml").read_text() == TEMPLATE and (repo / "role.md").exists()
    assert git(repo, "log", "--format=%an") == "hive-core"
    got = await events(hive, "manager")
    assert {"event": "config_ready", "agent": "alice"} in got
    [resolved] = [e for e in got if e["event"] == "approval_resolved"]
    assert resolved == {
        "event": "approval_resolved",
        "id": aid,
        "agent": "alice",
        "kind": "init_config",
        "commit_ref": "",
        "status": "approved",
        "note": resolved["note"],
    }
    assert resolved["note"].startswith("go; seeded ")
    assert lc.calls == []
    async with mgr(hive) as m:
        assert (await m.call("get_open_threads"))["threads"] == []
        with pytest.raises(Conflict, match="already has a config repo"):
            await m.call("request_init_config", name="alice")


async def test_apply_commit_applies_exactly_the_pinned_commit(
    hive: Hive, lc: RecordingLifecycle
) -> None:
    await register(hive, "alice", "bob")
    repo = await seeded(hive, "alice")
    await hive.configs.apply("alice", git(repo, "rev-parse", "seed"))  # type: ignore[attr-defined]
    await hive.broker.send("alice", "bob", "before: anyone")  # no whitelist yet
    wanted = commit(repo, {"agent.toml": 'allowed_recipients = ["carol"]\n'}, "whitelist")
    since = hive.hub.last_seq
    async with mgr(hive) as m:
        queued = await m.call(
            "request_apply_commit", agent="alice", sha=wanted[:10], description="lock down"
        )
    aid = queued["id"]
    assert git(repo, "rev-parse", f"refs/tags/proposal/{aid}") == wanted
    # the branch moves after the request: what gets applied does not
    moved = commit(repo, {"agent.toml": "allowed_recipients = []\n"}, "oops, open again")
    assert git(repo, "rev-parse", "main") == moved

    [row] = (await host(hive).call("pending"))["approvals"]
    assert row == {
        "id": aid,
        "agent": "alice",
        "kind": "apply_commit",
        "commit_ref": wanted[:10],
        "fetched_sha": wanted,
        "requested_at": row["requested_at"],
        "status": "pending",
        "note": "",
        "description": "lock down",
        "requested_by": "manager",
    }
    assert row["requested_at"].endswith("Z")
    shown = await host(hive).call("approval", id=aid)
    assert '+allowed_recipients = ["carol"]' in shown["diff"]
    assert "-allowed_recipients = []" in shown["diff"]  # the template's line, removed
    html = await hive.approvals.diff_html(aid)  # type: ignore[attr-defined]
    assert html is not None and '<span class="gi">+allowed_recipients' in html
    assert '<span class="gd">-' in html and 'class="hh-diff"' in html

    done = await host(hive).request_raw({"cmd": "approve", "id": aid})
    assert done["version"] == 1 and done["ok"] is True
    assert done["approval"]["status"] == "approved"
    applied = hive.paths.applied_dir("alice") / "agent.toml"
    assert applied.read_text() == 'allowed_recipients = ["carol"]\n'
    assert git(repo, "rev-parse", f"refs/tags/deployed/{aid}") == wanted
    assert lc.calls == [("rebuild", "alice", wanted)]
    status = {r["name"]: r for r in (await host(hive).call("agent_status"))["agent_statuses"]}
    assert status["alice"]["deployed_sha"] == wanted[:12]

    # the core now enforces the applied whitelist (the manager is always allowed)
    with pytest.raises(Forbidden, match="may only message"):
        await hive.broker.send("alice", "bob", "after: refused")
    await hive.broker.send("alice", "manager", "still fine")

    got = await events(hive, "manager")
    assert {"event": "rebuilt", "agent": "alice", "ok": True, "note": f"applied {wanted[:12]}"} in (
        got
    )
    [resolved] = [e for e in got if e["event"] == "approval_resolved"]
    assert resolved["status"] == "approved" and resolved["commit_ref"] == wanted[:10]
    kinds = [(e.kind, e.data.get("id")) for e in hive.hub.history(since)]
    assert ("approval_added", aid) in kinds and ("approval_resolved", aid) in kinds
    assert (await host(hive).call("approval", id=aid)).get("diff") is None  # resolved


async def test_foreign_and_malformed_shas_are_refused(hive: Hive, lc: RecordingLifecycle) -> None:
    await seeded(hive, "alice")
    bob_repo = await seeded(hive, "bob")
    bob_sha = commit(bob_repo, {"agent.toml": 'model = "opus"\n'})
    async with mgr(hive) as m:
        with pytest.raises(NotFound, match=f"commit {bob_sha} is not in alice's config repo"):
            await m.call("request_apply_commit", agent="alice", sha=bob_sha)
        for bad in ("../x", "main", "HEAD~1", "refs/tags/seed", "-n", "abc"):
            with pytest.raises(BadRequest, match="not a commit sha"):
                await m.call("request_apply_commit", agent="alice", sha=bad)
        with pytest.raises(BadRequest, match="invalid agent name"):
            await m.call("request_apply_commit", agent="../bob", sha=bob_sha)
        with pytest.raises(NotFound, match="no config repo"):
            await m.call("request_apply_commit", agent="carol", sha=bob_sha)
        with pytest.raises(BadRequest, match="unknown verb"):  # agents cannot request
            await register(hive, "dave")
            async with AgentClient(hive.paths.agent_sock("dave"), retry=NO_RETRY) as d:
                await d.call("request_apply_commit", agent="bob", sha=bob_sha)
    assert (await host(hive).call("pending"))["approvals"] == []


async def test_a_broken_config_fails_and_leaves_the_applied_one(
    hive: Hive, lc: RecordingLifecycle
) -> None:
    await register(hive, "alice")
    repo = await seeded(hive, "alice")
    seed = git(repo, "rev-parse", "HEAD")
    await hive.configs.apply("alice", seed)  # type: ignore[attr-defined]
    link = hive.paths.applied_dir("alice")
    before = os.readlink(link)
    broken = commit(repo, {"agent.toml": 'allowed_recipients = "bob"\nnetwork = "lan"\n'})
    row = await hive.approvals.request_apply_commit(  # type: ignore[attr-defined]
        "alice", broken, requested_by="manager"
    )
    answer = await host(hive).request_raw({"cmd": "approve", "id": row.id})
    assert answer["version"] == 1 and answer["ok"] is False
    assert answer["code"] == "approval_failed"
    assert "allowed_recipients" in answer["error"] and "network" in answer["error"]
    failed = await hive.approvals.get(row.id)  # type: ignore[attr-defined]
    assert failed.status == "failed" and "allowed_recipients" in failed.note
    assert os.readlink(link) == before and (link / "agent.toml").read_text() == TEMPLATE
    assert hive.configs.applied_sha("alice") == seed  # type: ignore[attr-defined]
    assert lc.calls == []  # nothing was rebuilt
    [resolved] = [e for e in await events(hive, "manager") if e["event"] == "approval_resolved"]
    assert resolved["status"] == "failed" and "allowed_recipients" in resolved["note"]


async def test_a_failed_rebuild_fails_the_approval(hive: Hive, lc: RecordingLifecycle) -> None:
    await register(hive, "alice")
    repo = await seeded(hive, "alice")
    sha = commit(repo, {"agent.toml": 'model = "opus"\n'})
    row = await hive.approvals.request_apply_commit(  # type: ignore[attr-defined]
        "alice", sha, requested_by="manager"
    )
    lc.fail_rebuild = "sandbox would not start"
    with pytest.raises(HiveError, match="rebuild failed: sandbox would not start"):
        await host(hive).call("approve", id=row.id)
    got = await events(hive, "manager")
    assert {
        "event": "rebuilt",
        "agent": "alice",
        "ok": False,
        "note": "sandbox would not start",
    } in got
    assert (await hive.approvals.get(row.id)).status == "failed"  # type: ignore[attr-defined]


async def test_two_concurrent_approves_resolve_once(hive: Hive, lc: RecordingLifecycle) -> None:
    await register(hive, "alice")
    repo = await seeded(hive, "alice")
    sha = commit(repo, {"agent.toml": 'model = "opus"\n'})
    row = await hive.approvals.request_apply_commit(  # type: ignore[attr-defined]
        "alice", sha, requested_by="manager"
    )
    answers = await asyncio.gather(
        host(hive).request_raw({"cmd": "approve", "id": row.id}),
        host(hive).request_raw({"cmd": "approve", "id": row.id, "note": "me too"}),
        host(hive).request_raw({"cmd": "deny", "id": row.id}),
    )
    assert sorted(a["ok"] for a in answers) == [False, False, True]
    for lost in (a for a in answers if not a["ok"]):
        assert lost["version"] == 1 and lost["code"] == "conflict"
        assert lost["error"].startswith(f"approval #{row.id} is already approved")
    assert lc.calls == [("rebuild", "alice", sha)]
    resolved = [e for e in await events(hive, "manager") if e["event"] == "approval_resolved"]
    assert len(resolved) == 1


async def test_deny_and_errors_for_resolved_or_unknown_ids(
    hive: Hive, lc: RecordingLifecycle
) -> None:
    await seeded(hive, "alice")
    async with mgr(hive) as m:
        aid = (await m.call("request_spawn", name="alice", description="please"))["id"]
    denied = await host(hive).request_raw({"cmd": "deny", "id": aid, "note": "not now"})
    assert denied["version"] == 1 and denied["ok"] is True
    assert denied["approval"]["status"] == "denied" and denied["approval"]["note"] == "not now"
    assert "resolved_at" in denied["approval"]
    got = await events(hive, "manager")
    assert got == [
        {
            "event": "approval_resolved",
            "id": aid,
            "agent": "alice",
            "kind": "spawn",
            "commit_ref": "main",
            "status": "denied",
            "note": "not now",
        }
    ]
    for cmd in ("approve", "deny"):
        again = await host(hive).request_raw({"cmd": cmd, "id": aid})
        assert again == {
            "version": 1,
            "ok": False,
            "error": f"approval #{aid} is already denied: not now",
            "code": "conflict",
        }
        unknown = await host(hive).request_raw({"cmd": cmd, "id": 9999})
        assert unknown == {
            "version": 1,
            "ok": False,
            "error": "no approval #9999",
            "code": "not_found",
        }
    assert lc.calls == [] and hive.registry.get("alice") is None
    raw = await raw_line(hive, b'{"cmd":"pending"}\n')
    assert raw.startswith(b'{"version":1,"ok":true,"approvals":[{"id":')
    listed = json.loads(raw)["approvals"]
    assert [(a["id"], a["status"]) for a in listed] == [(aid, "denied")]  # resolved rows too


async def test_cancel_thread_withdraws_a_request(hive: Hive, lc: RecordingLifecycle) -> None:
    since = hive.hub.last_seq
    async with mgr(hive) as m:
        aid = (await m.call("request_init_config", name="alice"))["id"]
        out = await m.call("cancel_thread", id=f"a:{aid}")
        assert out["cancelled"] is True and out["note"] == f"approval #{aid} cancelled"
        out = await m.call("cancel_thread", id=f"a:{aid}")
        assert out["cancelled"] is False and "already cancelled" in out["note"]
        assert (await m.call("get_open_threads"))["threads"] == []
        with pytest.raises(NotFound):
            await m.call("cancel_thread", id="a:9999")
    assert (await hive.approvals.get(aid)).status == "cancelled"  # type: ignore[attr-defined]
    [resolved] = await events(hive, "manager")
    assert resolved["event"] == "approval_resolved" and resolved["status"] == "cancelled"
    assert any(e.kind == "approval_resolved" for e in hive.hub.history(since))
    with pytest.raises(Conflict, match="already cancelled"):
        await host(hive).call("approve", id=aid)
    assert not hive.paths.config_repo("alice").exists()


async def test_operator_request_spawn_goes_through_approval(
    hive: Hive, lc: RecordingLifecycle
) -> None:
    queued = await host(hive).call("request_spawn", name="helper", description="for you")
    aid = queued["id"]
    assert hive.registry.get("helper") is None
    assert [t.id for t in await hive.followups.open_for("operator")] == [f"a:{aid}"]
    with pytest.raises(Conflict, match=f"already waiting as approval #{aid}"):
        await host(hive).call("request_spawn", name="helper")
    both = await asyncio.gather(
        host(hive).request_raw({"cmd": "request_spawn", "name": "twin"}),
        host(hive).request_raw({"cmd": "request_spawn", "name": "twin"}),
    )
    assert sorted(a["ok"] for a in both) == [False, True]  # decided by the database
    await host(hive).call("approve", id=aid)
    seed = git(hive.paths.config_repo("helper"), "rev-parse", "seed")
    assert lc.calls == [("spawn", "helper", seed)]
    rec = hive.registry.get("helper")
    assert rec is not None and rec.parent == "operator"
    got = await events(hive, "operator")
    assert {
        "event": "spawned",
        "agent": "helper",
        "ok": True,
        "note": f"spawned with config {seed[:12]}",
    } in got
    assert any(e["event"] == "approval_resolved" and e["status"] == "approved" for e in got)
    with pytest.raises(Conflict, match="already exists"):
        await host(hive).call("request_spawn", name="helper")
    for bad in ("operator", "Bad_Name", "../x"):
        with pytest.raises(BadRequest):
            await host(hive).call("request_spawn", name=bad)


async def test_spawn_after_init_config_applies_the_pinned_head(
    hive: Hive, lc: RecordingLifecycle
) -> None:
    """The two-step flow: seed, prepare, spawn. The spawn pins main's head at request time."""
    repo = await seeded(hive, "alice")
    prepared = commit(repo, {"agent.toml": 'model = "opus"\n'}, "prepared by the manager")
    async with mgr(hive) as m:
        queued = await m.call("request_spawn", name="alice")
    assert queued["approval"]["fetched_sha"] == prepared
    later = commit(repo, {"agent.toml": 'model = "sneaky"\n'}, "after the request")
    assert '+model = "opus"' in ((await host(hive).call("approval", id=queued["id"]))["diff"])
    await host(hive).call("approve", id=queued["id"])
    assert lc.calls == [("spawn", "alice", prepared)]
    assert git(repo, "rev-parse", "main") == later  # the repo is never rewritten
    assert hive.agent_configs.get("alice").model == "opus"


async def test_revive_reuses_the_kept_repo_and_applied_config(
    hive: Hive, lc: RecordingLifecycle
) -> None:
    """A tombstone: state and config kept, not registered. Spawn must not overwrite them."""
    repo = await seeded(hive, "ghost")
    mine = commit(repo, {"agent.toml": 'model = "opus"\n'}, "ghost's own config")
    await hive.configs.apply("ghost", mine)  # type: ignore[attr-defined]
    creds = hive.paths.state_dir("ghost") / ".claude" / ".credentials.json"
    creds.parent.mkdir(parents=True)
    creds.write_text("{}")
    aid = (await host(hive).call("request_spawn", name="ghost"))["id"]
    row = await hive.approvals.get(aid)  # type: ignore[attr-defined]
    assert row.fetched_sha is None  # something is applied: nothing to pin
    await host(hive).call("approve", id=aid)
    assert lc.calls == [("spawn", "ghost", mine)]
    assert git(repo, "rev-parse", "main") == mine and creds.read_text() == "{}"


async def test_manager_tools_over_mcp(hive: Hive, lc: RecordingLifecycle) -> None:
    from tests.support.mcp import call, mcp_session

    await register(hive, "alice")
    async with mcp_session(hive, "alice") as s:
        names = {t.name for t in (await s.list_tools()).tools}
        assert not names & {"request_spawn", "request_init_config", "request_apply_commit"}
    async with mcp_session(hive, "manager") as s:
        names = {t.name for t in (await s.list_tools()).tools}
        assert {"request_spawn", "request_init_config", "request_apply_commit"} <= names
        err, text = await call(s, "request_init_config", name="alice", description="prep")
        assert not err and "approval #1" in text and "a:1" in text
        await host(hive).call("approve", id=1)
        repo = hive.paths.config_repo("alice")
        sha = commit(repo, {"agent.toml": 'model = "opus"\n'})
        err, text = await call(s, "request_apply_commit", agent="alice", sha=sha[:8])
        assert not err and f"{sha[:12]} of alice pinned as proposal/2" in text
        err, text = await call(s, "request_apply_commit", agent="alice", sha="../etc")
        assert err and "not a commit sha" in text


# -- against the real lifecycle (fake runtime) ---------------------------------------------------


@pytest.fixture
async def real_hive(paths: HivePaths) -> AsyncIterator[Hive]:
    from hyperhive.runtime.fake import FakeWorld
    from tests.support.lifecycle import fake_hive

    world = FakeWorld()
    cfg = HiveConfig(defaults=Defaults(runtime="fake"))
    async with fake_hive(paths, cfg, world) as h:
        h.fake_world = world  # type: ignore[attr-defined]
        yield h


async def test_with_the_real_lifecycle(real_hive: Hive) -> None:
    hive = real_hive
    world = hive.fake_world  # type: ignore[attr-defined]
    aid = (await host(hive).call("request_spawn", name="alice"))["id"]
    await host(hive).call("approve", id=aid)
    seed = hive.configs.applied_sha("alice")  # type: ignore[attr-defined]
    assert seed is not None
    assert world.agents["alice"].running and world.agents["alice"].spec.config_rev == seed
    got = await events(hive, "operator")
    assert any(e["event"] == "spawned" and e["ok"] for e in got)

    sha = commit(hive.paths.config_repo("alice"), {"agent.toml": 'model = "opus"\n'})
    row = await hive.approvals.request_apply_commit(  # type: ignore[attr-defined]
        "alice", sha, requested_by="operator"
    )
    await host(hive).call("approve", id=row.id)
    assert world.agents["alice"].running and world.agents["alice"].spec.config_rev == sha
    status = {r["name"]: r for r in (await host(hive).call("agent_status"))["agent_statuses"]}
    assert status["alice"]["deployed_sha"] == sha[:12]
    assert any(e["event"] == "rebuilt" and e["ok"] for e in await events(hive, "operator"))
