"""Tool permissions asked of the operator, through real sockets: the ask parks until the
operator decides (once, even when two decide at once), expires, is dropped when its harness
is gone, and "allow always" keeps a rule the next ask is answered by."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from hyperhive.assembly import build_hive
from hyperhive.client.agent import NO_RETRY, AgentClient
from hyperhive.client.host import HostClient
from hyperhive.clock import Clock, ManualClock
from hyperhive.config import Defaults, HiveConfig
from hyperhive.core.hive import Hive
from hyperhive.core.permissions import PermissionsFeature
from hyperhive.core.status import status_row
from hyperhive.errors import BadRequest, Conflict, NotFound, Unavailable
from hyperhive.paths import HivePaths
from hyperhive.runtime.fake import FakeRuntime, FakeWorld
from hyperhive.wire.attention import AttentionSource
from tests.support.waiting import eventually


@pytest.fixture
def clock(manual_clock: ManualClock) -> Clock:
    return manual_clock


def perms(hive: Hive) -> PermissionsFeature:
    feature = hive.feature("permissions")
    assert isinstance(feature, PermissionsFeature)
    return feature


def agent(hive: Hive, name: str) -> AgentClient:
    return AgentClient(hive.paths.agent_sock(name), retry=NO_RETRY)


def ask_body(key: str = "k1", harness: str = "run1", **kw: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "cmd": "ask_permission",
        "tool": "Bash",
        "input": {"command": "git push origin main", "description": "publish"},
        "tool_use_id": "toolu_1",
        "reason": "rule",
        "rule": "Bash(git push:*)",
        "key": key,
        "harness": harness,
    }
    body.update(kw)
    return body


async def pending(hive: Hive, n: int) -> list[dict[str, Any]]:
    host = HostClient(hive.paths.host_sock)

    async def listed() -> tuple[list[dict[str, Any]]] | None:
        rows: list[dict[str, Any]] = (await host.call("permissions"))["permissions"]
        return (rows,) if len(rows) == n else None

    found = await eventually(listed)
    assert isinstance(found, tuple)
    return list(found[0])


async def test_allow_once_answers_the_parked_ask(hive: Hive) -> None:
    await hive.spawn("alice")
    host = HostClient(hive.paths.host_sock)
    since = hive.hub.last_seq
    async with agent(hive, "alice") as alice, agent(hive, "alice") as other:
        parked = asyncio.create_task(alice.request(ask_body()))
        [row] = await pending(hive, 1)
        assert row["agent"] == "alice" and row["tool"] == "Bash"
        assert row["input"]["command"] == "git push origin main"
        assert row["rule"] == "Bash(git push:*)" and row["status"] == "pending"
        assert row["deadline_at"] > row["asked_at"]
        await other.call("whoami")  # the agent is running: its page shows its state
        srow = await status_row(hive, "alice")
        assert srow.state == "waiting_operator"
        assert srow.state_note is not None and "git push origin main" in srow.state_note
        assert srow.pending_permissions == 1
        items = await perms(hive).attention()
        assert isinstance(perms(hive), AttentionSource)
        assert [(i.kind, i.count) for i in items] == [("permissions", 1)]

        decided = await host.call("decide_permission", id=row["id"], decision="allow")
        assert decided["permission"]["status"] == "allowed"
        answer = await asyncio.wait_for(parked, 10)
    assert answer["behavior"] == "allow" and answer["id"] == row["id"]
    assert (await host.call("permissions"))["permissions"] == []
    kinds = [e.kind for e in hive.hub.history(since)]
    assert "permission_added" in kinds and "permission_resolved" in kinds
    assert (await status_row(hive, "alice")).pending_permissions is None


async def test_deny_with_a_note_the_model_sees(hive: Hive) -> None:
    await hive.spawn("alice")
    host = HostClient(hive.paths.host_sock)
    async with agent(hive, "alice") as alice:
        parked = asyncio.create_task(alice.request(ask_body()))
        [row] = await pending(hive, 1)
        await host.call("decide_permission", id=row["id"], decision="deny", note=" not  today ")
        answer = await asyncio.wait_for(parked, 10)
        assert answer == {
            "ok": True,
            "id": row["id"],
            "behavior": "deny",
            "status": "denied",
            "note": "not today",
        }
        parked = asyncio.create_task(alice.request(ask_body(key="k2")))
        [row] = await pending(hive, 1)
        await host.call("decide_permission", id=row["id"], decision="deny")
        assert (await asyncio.wait_for(parked, 10))["note"] == "denied by the operator"


async def test_two_operators_at_once_one_decision(hive: Hive) -> None:
    await hive.spawn("alice")
    async with agent(hive, "alice") as alice:
        parked = asyncio.create_task(alice.request(ask_body()))
        [row] = await pending(hive, 1)
        results = await asyncio.gather(
            HostClient(hive.paths.host_sock).call(
                "decide_permission", id=row["id"], decision="allow"
            ),
            HostClient(hive.paths.host_sock).call(
                "decide_permission", id=row["id"], decision="deny"
            ),
            return_exceptions=True,
        )
        won = [r for r in results if isinstance(r, dict)]
        lost = [r for r in results if isinstance(r, Conflict)]
        assert len(won) == 1 and len(lost) == 1, results
        answer = await asyncio.wait_for(parked, 10)
    assert answer["status"] == won[0]["permission"]["status"]


async def test_ttl_denies_expired(hive: Hive, manual_clock: ManualClock) -> None:
    await hive.spawn("alice")
    ttl = hive.config.defaults.ask_operator_ttl_seconds
    async with agent(hive, "alice") as alice:
        parked = asyncio.create_task(alice.request(ask_body()))
        [row] = await pending(hive, 1)
        await manual_clock.advance(ttl - 1)
        await perms(hive).scheduler.wait_idle()
        assert not parked.done()
        await manual_clock.advance(2)
        answer = await asyncio.wait_for(parked, 10)
    assert (answer["behavior"], answer["status"], answer["note"]) == (
        "deny",
        "expired",
        "[expired]",
    )
    with pytest.raises(Conflict, match="already expired"):
        await HostClient(hive.paths.host_sock).call(
            "decide_permission", id=row["id"], decision="allow"
        )


async def test_allow_always_keeps_a_rule_for_this_agent(hive: Hive) -> None:
    await hive.spawn("alice")
    await hive.spawn("bob")
    host = HostClient(hive.paths.host_sock)
    async with agent(hive, "alice") as alice, agent(hive, "bob") as bob:
        parked = asyncio.create_task(alice.request(ask_body()))
        [row] = await pending(hive, 1)
        decided = await host.call("decide_permission", id=row["id"], decision="always")
        assert decided["permission"]["kept_rule"] == "Bash(git push origin main)"
        assert (await asyncio.wait_for(parked, 10))["behavior"] == "allow"
        assert await perms(hive).rules("alice") == ["Bash(git push origin main)"]
        # the same use again: allowed at once, nothing shown to the operator
        again = await asyncio.wait_for(alice.request(ask_body(key="k2")), 10)
        assert again["behavior"] == "allow" and again["id"] != row["id"]
        assert (await host.call("permissions"))["permissions"] == []
        # another command, or another agent: asked again
        other = asyncio.create_task(
            alice.request(ask_body(key="k3", input={"command": "git push --force"}))
        )
        by_bob = asyncio.create_task(bob.request(ask_body(key="k1")))
        rows = await pending(hive, 2)
        assert {r["agent"] for r in rows} == {"alice", "bob"}
        for r in rows:
            await host.call("decide_permission", id=r["id"], decision="deny")
        await asyncio.wait_for(asyncio.gather(other, by_bob), 10)
        # a command holding a glob has no narrow rule: always is refused, once still works
        globbed = asyncio.create_task(alice.request(ask_body(key="k4", input={"command": "rm *"})))
        [g] = await pending(hive, 1)
        with pytest.raises(BadRequest, match="allow it once"):
            await host.call("decide_permission", id=g["id"], decision="always")
        await host.call("decide_permission", id=g["id"], decision="allow")
        assert (await asyncio.wait_for(globbed, 10))["behavior"] == "allow"


async def test_a_resend_joins_the_same_request(hive: Hive) -> None:
    await hive.spawn("alice")
    async with agent(hive, "alice") as first, agent(hive, "alice") as second:
        a = asyncio.create_task(first.request(ask_body()))
        [row] = await pending(hive, 1)
        b = asyncio.create_task(second.request(ask_body()))  # the client's retry, same key
        await perms(hive).decide(row["id"], "allow")
        answers = await asyncio.wait_for(asyncio.gather(a, b), 10)
    assert [x["id"] for x in answers] == [row["id"], row["id"]]
    assert len(await perms(hive).store.pending()) == 0


async def test_a_new_harness_run_drops_the_old_runs_requests(hive: Hive) -> None:
    await hive.spawn("alice")
    async with agent(hive, "alice") as old, agent(hive, "alice") as new:
        stale = asyncio.create_task(old.request(ask_body(harness="run1")))
        await pending(hive, 1)
        fresh = asyncio.create_task(new.request(ask_body(key="k9", harness="run2")))
        answer = await asyncio.wait_for(stale, 10)
        assert (answer["status"], answer["behavior"]) == ("dropped", "deny")
        [row] = await pending(hive, 1)
        assert row["id"] != answer["id"]
        await perms(hive).decide(row["id"], "allow")
        await asyncio.wait_for(fresh, 10)


async def test_a_lifecycle_restart_drops_pending_requests(paths: HivePaths) -> None:
    """A restarted agent does not inherit old prompts: the lifecycle's restart (as every
    start, rebuild, stop, destroy) drops what its harness asked, and the operator no longer
    sees it."""
    world = FakeWorld()
    config = HiveConfig(defaults=Defaults(runtime="fake"))
    async with build_hive(paths, config, runtime_factory=lambda n: FakeRuntime(world)) as hive:
        await hive.spawn("alice")
        alice = agent(hive, "alice")
        parked = asyncio.create_task(alice.request(ask_body()))
        [row] = await pending(hive, 1)
        await asyncio.wait_for(hive.lifecycle.restart("alice"), 30)
        await pending(hive, 0)
        dropped = await perms(hive).get(row["id"])
        assert (dropped.status, dropped.note) == ("dropped", "[dropped: the agent restarted]")
        # the asker was cut off with its harness's connections, or heard "dropped"
        got = await asyncio.gather(asyncio.wait_for(parked, 10), return_exceptions=True)
        assert isinstance(got[0], Unavailable) or got[0]["status"] == "dropped"
        await alice.aclose()


async def test_the_asker_withdraws(hive: Hive) -> None:
    await hive.spawn("alice")
    async with agent(hive, "alice") as alice, agent(hive, "alice") as again:
        parked = asyncio.create_task(alice.request(ask_body()))
        [row] = await pending(hive, 1)
        assert await again.call("withdraw_permission", key="k1") == {
            "ok": True,
            "withdrawn": True,
            "id": row["id"],
        }
        answer = await asyncio.wait_for(parked, 10)
        assert answer["status"] == "dropped" and answer["note"].startswith("[withdrawn")
        assert (await again.call("withdraw_permission", key="k1"))["withdrawn"] is False
        assert await again.call("withdraw_permission", key="nope") == {
            "ok": True,
            "withdrawn": False,
        }
    async with agent(hive, "manager") as mgr:  # another agent's key is not its own
        assert (await mgr.call("withdraw_permission", key="k1"))["withdrawn"] is False


async def test_bad_requests(hive: Hive) -> None:
    await hive.spawn("alice")
    host = HostClient(hive.paths.host_sock)
    with pytest.raises(NotFound):
        await host.call("decide_permission", id=999, decision="allow")
    with pytest.raises(BadRequest):
        await host.call("decide_permission", id=1, decision="maybe")
    async with agent(hive, "alice") as alice:
        with pytest.raises(BadRequest, match="limit"):
            await alice.request(ask_body(input={"content": "x" * 300_000}))
        with pytest.raises(BadRequest, match="missing field 'key'"):
            body = ask_body()
            del body["key"]
            await alice.request(body)
