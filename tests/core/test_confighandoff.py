"""Config hand-offs on a shared database, one node in process (`core/confighandoff.py`): what
was approved but not acted on is acted on at the node's next pass, exactly once, never rolling
an agent back; denied requests drop theirs. (Two real nodes: test_nodes_configs.py.)"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from hyperhive.assembly import build_hive
from hyperhive.clock import Clock, iso
from hyperhive.config import HiveConfig
from hyperhive.core.confighandoff import ConfigHandoff
from hyperhive.core.hive import Hive
from hyperhive.core.store.backend import ENV_URL
from hyperhive.paths import HivePaths
from hyperhive.wire.approvals import ApprovalStatus
from tests.core.test_approvals import RecordingLifecycle, register, seeded
from tests.support.git import commit
from tests.support.waiting import eventually


@pytest.fixture
async def pg_hive(
    paths: HivePaths,
    hive_config: HiveConfig,
    clock: Clock,
    pg_url: Callable[[], str],
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Hive]:
    monkeypatch.setenv(ENV_URL, pg_url())
    async with build_hive(paths, hive_config, clock=clock) as h:
        yield h


@pytest.fixture
def lc(pg_hive: Hive) -> RecordingLifecycle:
    fake = RecordingLifecycle(pg_hive)
    pg_hive.approvals.lifecycle = fake  # type: ignore[attr-defined]
    return fake


def handoff(hive: Hive) -> ConfigHandoff:
    h = hive.approvals.handoff  # type: ignore[attr-defined]
    assert isinstance(h, ConfigHandoff)
    return h


async def decided_only(hive: Hive, aid: int) -> None:
    """Approved in the database and nothing more (the daemon died right after deciding)."""
    _, won = await hive.approvals.store.decide(  # type: ignore[attr-defined]
        aid, ApprovalStatus.APPROVED, iso(hive.clock.now()), ""
    )
    assert won


async def _note_has(hive: Hive, aid: int, text: str) -> bool:
    return text in (await hive.approvals.get(aid)).note  # type: ignore[attr-defined]


async def test_approved_but_not_acted_is_acted_on_at_the_next_pass(
    pg_hive: Hive, lc: RecordingLifecycle
) -> None:
    hive = pg_hive
    await register(hive, "alice")
    repo = await seeded(hive, "alice")
    sha = commit(repo, {"agent.toml": 'model = "opus"\n'})
    row = await hive.approvals.request_apply_commit(  # type: ignore[attr-defined]
        "alice", sha, requested_by="manager"
    )
    await decided_only(hive, row.id)
    await handoff(hive).run_once()  # (the node's own pass may be the one that acts: either)
    await eventually(lambda: _note_has(hive, row.id, "applied"), what="acted on")
    assert hive.configs.applied_sha("alice") == sha  # type: ignore[attr-defined]
    assert lc.calls == [("rebuild", "alice", sha)]
    final = await hive.approvals.get(row.id)  # type: ignore[attr-defined]
    assert final.status == "approved" and f"applied {sha[:12]}" in final.note
    # a second pass, or a duplicate delivery, does nothing more
    await handoff(hive).run_once()
    again = await hive.approvals._run_act(final, "")  # type: ignore[attr-defined]
    assert again.note == final.note and lc.calls == [("rebuild", "alice", sha)]
    assert (await handoff(hive).store.get(row.id)).state == "applied"  # type: ignore[union-attr]


async def test_an_older_change_never_rolls_back_a_newer_one(
    pg_hive: Hive, lc: RecordingLifecycle
) -> None:
    hive = pg_hive
    await register(hive, "alice")
    repo = await seeded(hive, "alice")
    older = commit(repo, {"agent.toml": 'model = "older"\n'})
    first = await hive.approvals.request_apply_commit(  # type: ignore[attr-defined]
        "alice", older, requested_by="manager"
    )
    newer = commit(repo, {"agent.toml": 'model = "newer"\n'})
    second = await hive.approvals.request_apply_commit(  # type: ignore[attr-defined]
        "alice", newer, requested_by="manager"
    )
    await hive.approvals.approve(second.id)  # type: ignore[attr-defined]
    await decided_only(hive, first.id)  # approved late, delivered after the newer one
    await handoff(hive).run_once()
    await eventually(lambda: _note_has(hive, first.id, "superseded"), what="superseded")
    assert hive.configs.applied_sha("alice") == newer  # type: ignore[attr-defined]
    row = await hive.approvals.get(first.id)  # type: ignore[attr-defined]
    assert f"superseded by #{second.id}" in row.note
    assert (await handoff(hive).store.get(first.id)).state == "superseded"  # type: ignore[union-attr]
    assert lc.calls == [("rebuild", "alice", newer)]


async def test_a_denied_request_drops_its_handoff(pg_hive: Hive, lc: RecordingLifecycle) -> None:
    hive = pg_hive
    await register(hive, "alice")
    repo = await seeded(hive, "alice")
    sha = commit(repo, {"agent.toml": 'model = "opus"\n'})
    row = await hive.approvals.request_apply_commit(  # type: ignore[attr-defined]
        "alice", sha, requested_by="manager"
    )
    assert (await handoff(hive).store.get(row.id)).state == "waiting"  # type: ignore[union-attr]
    await hive.approvals.deny(row.id)  # type: ignore[attr-defined]
    assert (await handoff(hive).store.get(row.id)).state == "dropped"  # type: ignore[union-attr]
    await handoff(hive).run_once()
    assert lc.calls == [] and hive.configs.applied_sha("alice") != sha  # type: ignore[attr-defined]


async def test_a_node_named_for_a_spawn_must_be_live(pg_hive: Hive) -> None:
    from hyperhive.errors import NotFound

    with pytest.raises(NotFound, match="no node 'elsewhere'"):
        await pg_hive.approvals.request_spawn(  # type: ignore[attr-defined]
            "bob", requested_by="operator", node="elsewhere"
        )
    assert await pg_hive.approvals.pending() == []  # type: ignore[attr-defined]


async def test_on_one_host_only_this_node_may_be_named(hive: Hive) -> None:
    """sqlite: one node, no hand-offs; naming it is fine, naming another is refused."""
    from hyperhive.errors import NotSupported

    this = hive.feature("nodes").node  # type: ignore[attr-defined]
    assert hive.approvals.handoff is None  # type: ignore[attr-defined]
    row = await hive.approvals.request_spawn(  # type: ignore[attr-defined]
        "bob", requested_by="operator", node=this
    )
    assert row.status == "pending"
    with pytest.raises(NotSupported, match="one host"):
        await hive.approvals.request_spawn(  # type: ignore[attr-defined]
            "carol", requested_by="operator", node="elsewhere"
        )
