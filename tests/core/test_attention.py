"""What needs the operator (`core/attention.py`): the core's own items (failed or crashed agents,
unread operator mail), the questions and approvals features, and any other feature that
implements `AttentionSource`, picked up without an edit."""

from __future__ import annotations

import logging

import pytest

from hyperhive.assembly import build_features
from hyperhive.client.agent import NO_RETRY, AgentClient
from hyperhive.config import HiveConfig
from hyperhive.core.attention import gather
from hyperhive.core.feature import BaseFeature
from hyperhive.core.hive import Hive
from hyperhive.paths import HivePaths
from hyperhive.wire.attention import AttentionItem
from tests.support.waiting import eventually


class Budgets(BaseFeature):
    """A feature from elsewhere (the budgets branch) with items for the bar."""

    name = "budgets_elsewhere"

    def __init__(self) -> None:
        self.tripped = 0

    async def attention(self) -> list[AttentionItem]:
        return [
            AttentionItem(kind="budgets", count=self.tripped, label="tripped budgets", href="#b")
        ]


class Broken(BaseFeature):
    name = "broken"

    async def attention(self) -> list[AttentionItem]:
        raise RuntimeError("boom")


class MorePermissions(BaseFeature):
    """Two sources of one kind are summed."""

    name = "more_perms"

    async def attention(self) -> list[AttentionItem]:
        return [AttentionItem(kind="approvals", count=2, label="pending approvals", href="#x")]


MINE = ("questions", "approvals", "failed_agents", "operator_mail")


def counts(items: list[AttentionItem]) -> dict[str, int]:
    """The kinds this test drives (the hive's other sources, permissions and budgets, stay 0)."""
    got = {i.kind: i.count for i in items}
    assert all(n == 0 for k, n in got.items() if k not in MINE and k != "budgets"), got
    return {k: n for k, n in got.items() if k in MINE or k == "budgets"}


async def test_core_and_feature_sources(hive: Hive) -> None:
    got = counts(await gather(hive))
    assert {k: got[k] for k in MINE} == {k: 0 for k in MINE}
    await hive.spawn("alice")
    await hive.questions.ask("manager", "Ship it?", ["yes", "no"])
    await hive.approvals.request_spawn("zed", requested_by="operator", description="x")
    await hive.broker.send("alice", "operator", "hello")
    await hive.broker.send("alice", "operator", "again")
    async with AgentClient(hive.paths.agent_sock("alice"), retry=NO_RETRY) as alice:
        await alice.call("report_state", state="failed", note="API error 529")

        async def failing() -> int:
            return counts(await gather(hive))["failed_agents"]

        await eventually(failing, what="the failed agent counted")
        got = counts(await gather(hive))
        assert {k: got[k] for k in MINE} == {
            "questions": 1,
            "approvals": 1,
            "failed_agents": 1,
            "operator_mail": 2,
        }
        await alice.call("report_state", state="idle")
        await eventually(lambda: _zero(hive), what="the failure no longer counted")
    items = await gather(hive)
    assert [i.kind for i in items if i.kind in MINE] == list(MINE)
    assert {i.kind: i.href for i in items}["questions"] == "#questions"


async def _zero(hive: Hive) -> bool:
    return counts(await gather(hive))["failed_agents"] == 0


async def test_any_feature_with_attention_is_gathered(
    paths: HivePaths, hive_config: HiveConfig, caplog: pytest.LogCaptureFixture
) -> None:
    features, lifecycle = build_features()
    budgets = Budgets()
    extra = [budgets, Broken(), MorePermissions()]
    async with Hive(paths, hive_config, features=[*features, *extra], launcher=lifecycle) as h:
        await h.approvals.request_spawn("zed", requested_by="operator", description="x")
        budgets.tripped = 3
        with caplog.at_level(logging.ERROR):
            items = await gather(h)
        got = counts(items)
        assert got["budgets"] == 3 and got["approvals"] == 3  # 1 pending + 2 from another source
        assert [i.kind for i in items].index("budgets") > [i.kind for i in items].index(
            "operator_mail"
        )
        assert "attention source broken failed" in caplog.text  # left out, nothing else lost
