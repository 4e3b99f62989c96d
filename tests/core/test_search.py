"""Search through a real core: the host verb `search`, the manager verb `search_history`, input
validation with the one error shape, and the turn indexer pulling an agent's event store
(incrementally, following retention and a store that starts over, never through a link, read
as the agent when the core is root)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any, cast

import pytest

from hyperhive.client.agent import NO_RETRY, AgentClient
from hyperhive.client.host import HostClient
from hyperhive.clock import iso
from hyperhive.core.hive import Hive
from hyperhive.core.retention import sweep_state_dir
from hyperhive.core.search import SearchFeature
from hyperhive.errors import BadRequest, HiveError
from hyperhive.harness.events import EventBus
from tests.support.waiting import eventually


def feature(hive: Hive) -> SearchFeature:
    return cast(SearchFeature, hive.feature("search"))


async def host_search(hive: Hive, **fields: Any) -> list[dict[str, Any]]:
    answer = await HostClient(hive.paths.host_sock).call("search", **fields)
    return list(answer["hits"])


async def publish_turn(state: Path, text: str, tool_output: str = "ok") -> None:
    """A turn as the harness records it in the agent's event store."""
    async with EventBus(state) as bus:
        bus.publish("turn_start", **{"from": "manager", "body": f"please {text}", "id": 1})
        bus.publish("thinking", thinking="secret musings")
        bus.publish("tool_use", id="t1", name="Bash", input={"command": f"grep {text}"})
        bus.publish("tool_result", tool_use_id="t1", content=tool_output, is_error=False)
        bus.publish("text", text=f"done with {text}")
        bus.publish("turn_end", ok=True, kind="ok", note="")


async def test_messages_are_found_by_the_host_verb(hive: Hive) -> None:
    await hive.spawn("alice")
    async with AgentClient(hive.paths.agent_sock("alice"), retry=NO_RETRY) as alice:
        await alice.call("send", to="manager", body="we decided on the heron design")
    hits = await host_search(hive, query="heron")
    assert len(hits) == 1
    hit = hits[0]
    assert (hit["kind"], hit["agent"], hit["peer"]) == ("message", "alice", "manager")
    assert ["heron", True] in hit["snippet"]
    assert hit["link"] == "/agent/manager/"
    assert await host_search(hive, query="heron", agent="bob") == []
    assert await host_search(hive, query="heron", kinds=["turn"]) == []
    assert len(await host_search(hive, query="heron", since_seconds=3600)) == 1


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"query": ""}, "bad_request"),
        ({"query": "..."}, "bad_request"),
        ({"query": "x" * 501}, "bad_request"),
        ({"query": "x", "limit": 0}, "bad_request"),
        ({"query": "x", "kinds": ["bogus"]}, "bad_request"),
        ({"query": "x", "since_seconds": -1}, "bad_request"),
        ({"query": "x", "agent": "../etc"}, "invalid_name"),
        ({"query": "x", "extra": 1}, "bad_request"),
    ],
)
async def test_bad_input_is_refused_with_the_error_shape(
    hive: Hive, fields: dict[str, Any], code: str
) -> None:
    answer = await HostClient(hive.paths.host_sock).request_raw({"cmd": "search", **fields})
    assert answer["ok"] is False and answer["code"] == code and answer["error"]


@pytest.mark.parametrize("query", ['"x', "AND OR NOT (x", "a:b NEAR(c", "^x*", 'say "hi'])
async def test_fts_syntax_in_user_text_is_not_an_error(hive: Hive, query: str) -> None:
    answer = await HostClient(hive.paths.host_sock).request_raw({"cmd": "search", "query": query})
    assert answer["ok"] is True, answer
    assert answer["hits"] == []


async def test_the_manager_searches_and_agents_may_not(hive: Hive) -> None:
    await hive.spawn("alice")
    await HostClient(hive.paths.host_sock).call("send", to="alice", body="budget is 40 dollars")
    async with AgentClient(hive.paths.agent_sock("manager"), retry=NO_RETRY) as mgr:
        answer = await mgr.call("search_history", query="budget dollars")
    assert [h["kind"] for h in answer["hits"]] == ["message"]
    async with AgentClient(hive.paths.agent_sock("alice"), retry=NO_RETRY) as alice:
        with pytest.raises(HiveError) as err:
            await alice.call("search_history", query="budget")
    assert isinstance(err.value, BadRequest)


async def test_turn_history_is_indexed_from_the_agent_store(hive: Hive) -> None:
    await hive.spawn("alice")
    state = hive.paths.state_dir("alice")
    state.mkdir(parents=True, exist_ok=True)
    await publish_turn(state, "refactor walrus", tool_output="found a walrus on line 3")
    await feature(hive).index_now()
    hits = await host_search(hive, query="walrus", kinds=["turn"])
    titles = [h["title"] for h in hits]
    assert titles == ["assistant", "tool result", "tool Bash", "prompt from manager"]
    assert all(h["agent"] == "alice" for h in hits)
    assert hits[0]["link"] == f"/agent/alice/#event-{hits[0]['ref']}"
    assert await host_search(hive, query="musings") == []  # thinking is not indexed
    # incremental: a second pass adds only the new turn
    await publish_turn(state, "walrus again")
    assert await feature(hive).index_now(["alice"]) == 4
    assert len(await host_search(hive, query="walrus", kinds=["turn"])) == 7  # result: "ok"


async def test_the_indexer_follows_a_turn_by_itself(hive: Hive) -> None:
    await hive.spawn("alice")
    state = hive.paths.state_dir("alice")
    state.mkdir(parents=True, exist_ok=True)
    await publish_turn(state, "pelican")
    hive.hub.publish("agent_state", agent="alice", state="idle", note="", since=iso(time.time()))
    await eventually(lambda: host_search(hive, query="pelican"), what="the turn indexed")


async def test_retention_and_a_new_store_leave_the_index_in_step(hive: Hive) -> None:
    await hive.spawn("alice")
    state = hive.paths.state_dir("alice")
    state.mkdir(parents=True, exist_ok=True)
    await publish_turn(state, "otter one")
    await publish_turn(state, "otter two")
    await feature(hive).index_now()
    assert len(await host_search(hive, query="otter")) == 6  # prompt, tool call, text x 2
    # the host's retention keeps the newest 6 events (the second turn's): the first turn's
    # docs go from the index
    sweep_state_dir(state, time.time(), events_days=7, events_keep=6, stats_days=90)
    await feature(hive).index_now()
    hits = await host_search(hive, query="otter")
    assert len(hits) == 3 and all("two" in "".join(t for t, _ in h["snippet"]) for h in hits)
    # the store starts over (a new incarnation): the old docs go, the new ones come
    for f in state.glob("hyperhive-events.sqlite*"):
        f.unlink()
    await publish_turn(state, "otter three")
    await feature(hive).index_now()
    hits = await host_search(hive, query="otter")
    assert len(hits) == 3 and all("three" in "".join(t for t, _ in h["snippet"]) for h in hits)


async def test_a_linked_event_store_is_not_followed(hive: Hive, short_tmp: Path) -> None:
    await hive.spawn("alice")
    elsewhere = short_tmp / "elsewhere"
    elsewhere.mkdir()
    await publish_turn(elsewhere, "secret badger")
    state = hive.paths.state_dir("alice")
    state.mkdir(parents=True, exist_ok=True)
    (state / "hyperhive-events.sqlite").symlink_to(elsewhere / "hyperhive-events.sqlite")
    await feature(hive).index_now()
    assert await host_search(hive, query="badger") == []


async def test_a_malformed_event_row_is_skipped(hive: Hive) -> None:
    await hive.spawn("alice")
    state = hive.paths.state_dir("alice")
    state.mkdir(parents=True, exist_ok=True)
    await publish_turn(state, "lynx")
    conn = sqlite3.connect(state / "hyperhive-events.sqlite")
    with conn:
        conn.execute(
            "INSERT INTO events(id, ts, kind, payload_json) VALUES (100, 'x', 'text', '{bad')"
        )
        conn.execute(
            "INSERT INTO events(id, ts, kind, payload_json) VALUES (101, ?, 'text', ?)",
            (iso(time.time()), '{"text": {"nested": "lynx object"}}'),
        )
    conn.close()
    await feature(hive).index_now()
    # the invalid JSON row is skipped; an odd-shaped one is indexed as the text it holds
    assert len(await host_search(hive, query="lynx")) == 4


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to hand the store to an agent uid")
async def test_a_root_core_reads_the_store_as_the_agent(hive: Hive) -> None:
    await hive.spawn("alice")
    state = hive.paths.state_dir("alice")
    state.mkdir(parents=True, exist_ok=True)
    await publish_turn(state, "ibex")
    for p in [state, *state.iterdir()]:
        os.chown(p, 231778, 231778)
    await feature(hive).index_now()
    assert len(await host_search(hive, query="ibex")) == 3


async def test_a_purged_agent_leaves_the_index(hive: Hive) -> None:
    await hive.spawn("alice")
    state = hive.paths.state_dir("alice")
    state.mkdir(parents=True, exist_ok=True)
    await publish_turn(state, "gecko")
    await feature(hive).index_now()
    assert len(await host_search(hive, query="gecko")) == 3
    # destroyed but kept (a tombstone): its history stays searchable
    await hive.registry.remove("alice")
    await feature(hive).index_now()
    assert len(await host_search(hive, query="gecko")) == 3
    # purged: its state is gone, and so are its docs
    shutil.rmtree(hive.paths.agent_dir("alice"))
    await feature(hive).index_now()
    assert await host_search(hive, query="gecko") == []
