"""The search store contract, on every backend: rows are searchable once stored and gone once
swept (kept in step on write), filters by agent / kind / time, newest first, the turn docs'
cursor and retention, and user text that is never an FTS syntax error."""

from __future__ import annotations

import pytest

from hyperhive.core.records import NewMessage
from hyperhive.core.store.base import ApprovalStore, MessageStore, QuestionStore
from hyperhive.core.store.memory import (
    MemoryApprovalStore,
    MemoryMessageStore,
    MemoryQuestionStore,
)
from hyperhive.core.store.memory_search import MemorySearchStore
from hyperhive.core.store.pg.messages import PgMessageStore
from hyperhive.core.store.pg.search import PgSearchStore
from hyperhive.core.store.search import SearchQuery, SearchStore, TurnDoc, fts_query, segments
from hyperhive.core.store.search_sqlite import SqliteSearchStore
from hyperhive.core.store.sqlite import SqliteMessageStore
from hyperhive.errors import BadRequest
from hyperhive.wire.approvals import ApprovalStatus
from hyperhive.wire.search import Kind

T0 = "2026-01-01T00:00:00.000000Z"
T1 = "2026-01-02T00:00:00.000000Z"
T2 = "2026-01-03T00:00:00.000000Z"


@pytest.fixture
def search(
    backend: str, messages: MessageStore, questions: QuestionStore, approvals: ApprovalStore
) -> SearchStore:
    if backend == "sqlite":
        assert isinstance(messages, SqliteMessageStore)
        return SqliteSearchStore(messages.db)
    if backend == "postgresql":
        assert isinstance(messages, PgMessageStore)
        return PgSearchStore(messages.db)
    assert isinstance(messages, MemoryMessageStore)
    assert isinstance(questions, MemoryQuestionStore)
    assert isinstance(approvals, MemoryApprovalStore)
    return MemorySearchStore(messages, questions, approvals)


def q(
    text: str,
    *,
    agent: str | None = None,
    kinds: tuple[Kind, ...] = (),
    since: str | None = None,
    limit: int = 20,
) -> SearchQuery:
    fts, words = fts_query(text)
    return SearchQuery(fts, words, agent=agent, kinds=kinds, since=since, limit=limit)


def text_of(hit_snippet: list[tuple[str, bool]]) -> str:
    return "".join(t for t, _ in hit_snippet)


async def test_a_message_is_found_once_stored_with_highlight(
    search: SearchStore, messages: MessageStore
) -> None:
    assert await search.search(q("zebra")) == []
    [m] = await messages.insert_messages([NewMessage("alice", "bob", "the zebra plan is go")], T0)
    [hit] = await search.search(q("zebra"))
    assert (hit.kind, hit.ref, hit.agent, hit.peer, hit.ts) == ("message", m.id, "alice", "bob", T0)
    assert ("zebra", True) in hit.snippet
    assert "plan" in text_of(hit.snippet)


async def test_every_term_must_match_and_phrases_keep_order(
    search: SearchStore, messages: MessageStore
) -> None:
    await messages.insert_messages(
        [
            NewMessage("alice", "bob", "red apple pie"),
            NewMessage("alice", "bob", "apple red sauce"),
        ],
        T0,
    )
    assert len(await search.search(q("red apple"))) == 2
    assert len(await search.search(q('"red apple"'))) == 1
    assert len(await search.search(q("red pie"))) == 1
    assert len(await search.search(q("app*"))) == 2


async def test_filters_by_agent_and_since(search: SearchStore, messages: MessageStore) -> None:
    await messages.insert_messages([NewMessage("alice", "bob", "deploy now")], T0)
    await messages.insert_messages([NewMessage("carol", "dave", "deploy later")], T2)
    assert {h.agent for h in await search.search(q("deploy", agent="bob"))} == {"alice"}
    assert {h.agent for h in await search.search(q("deploy", agent="carol"))} == {"carol"}
    assert [h.ts for h in await search.search(q("deploy", since=T1))] == [T2]
    assert await search.search(q("deploy", agent="nobody")) == []


async def test_newest_first_and_limit(search: SearchStore, messages: MessageStore) -> None:
    for i in range(5):
        await messages.insert_messages([NewMessage("a", "b", f"tick {i}")], f"2026-01-0{i + 1}T00")
    hits = await search.search(q("tick", limit=3))
    assert [text_of(h.snippet) for h in hits] == ["tick 4", "tick 3", "tick 2"]


async def test_sweep_removes_rows_from_the_index(
    search: SearchStore, messages: MessageStore
) -> None:
    [old] = await messages.insert_messages([NewMessage("a", "b", "ancient lore")], T0)
    await messages.insert_messages([NewMessage("a", "b", "fresh lore")], T2)
    await messages.mark_delivered([old.id], T0)
    assert await messages.sweep_delivered(T1) == 1
    hits = await search.search(q("lore"))
    assert [text_of(h.snippet) for h in hits] == ["fresh lore"]


async def test_questions_and_their_answers(search: SearchStore, questions: QuestionStore) -> None:
    row = await questions.insert(
        "alice", "Which database should we use?", ["sqlite"], False, T0, None
    )
    [hit] = await search.search(q("database"))
    assert (hit.kind, hit.ref, hit.agent) == ("question", row.id, "alice")
    assert await search.search(q("postgres")) == []
    await questions.resolve(row.id, T1, lambda r: "postgres, decided")
    [hit] = await search.search(q("postgres", kinds=("question",)))
    assert hit.ref == row.id and "answered" in hit.title


async def test_approvals_and_their_decision_note(
    search: SearchStore, approvals: ApprovalStore
) -> None:
    row = await approvals.insert(
        agent="bob", kind="spawn", requested_by="manager", requested_at=T0, description="a tester"
    )
    [hit] = await search.search(q("tester"))
    assert (hit.kind, hit.ref, hit.agent, hit.peer) == ("approval", row.id, "bob", "manager")
    await approvals.decide(row.id, ApprovalStatus.DENIED, T1, "too expensive")
    [hit] = await search.search(q("expensive", agent="manager"))
    assert "denied" in hit.title


async def test_turn_docs_cursor_and_retention(search: SearchStore) -> None:
    assert await search.turn_cursor("alice") == 0
    docs = [
        TurnDoc("alice", 3, T0, "prompt", "prompt", "please refactor the parser"),
        TurnDoc("alice", 5, T1, "tool_use", "tool Bash", "Bash pytest -q parser"),
        TurnDoc("alice", 9, T2, "assistant", "assistant", "the parser is refactored"),
    ]
    assert await search.add_turns("alice", docs, 10) == 3
    assert await search.add_turns("alice", docs[:1], 4) == 0  # already indexed; cursor stays
    assert await search.turn_cursor("alice") == 10
    hits = await search.search(q("parser", kinds=("turn",)))
    assert [h.ref for h in hits] == [9, 5, 3]
    assert hits[0].agent == "alice" and hits[1].title == "tool Bash"
    assert await search.search(q("parser", agent="bob")) == []
    assert await search.forget_turns("alice", below_id=5) == 1
    assert await search.forget_turns("alice", before=T2) == 1
    assert [h.ref for h in await search.search(q("parser"))] == [9]
    await search.add_turns("bob", [], 2)
    assert await search.turn_agents() == ["alice", "bob"]
    assert await search.reset_turns("alice") == 1
    assert await search.turn_cursor("alice") == 0
    assert await search.turn_agents() == ["bob"]
    assert await search.search(q("parser")) == []


async def test_kinds_restrict_and_mix(
    search: SearchStore, messages: MessageStore, questions: QuestionStore
) -> None:
    await messages.insert_messages([NewMessage("a", "b", "budget talk")], T0)
    await questions.insert("a", "raise the budget?", [], False, T1, None)
    await search.add_turns("a", [TurnDoc("a", 1, T2, "assistant", "assistant", "budget ok")], 1)
    assert [h.kind for h in await search.search(q("budget"))] == ["turn", "question", "message"]
    assert [h.kind for h in await search.search(q("budget", kinds=("message",)))] == ["message"]


@pytest.mark.parametrize(
    "text",
    ['"', "AND", "NOT OR", "a:b", "(x", "*", "col:val NEAR(", "^start", '"unbalanced', "x-y"],
)
async def test_user_text_is_never_a_syntax_error(search: SearchStore, text: str) -> None:
    try:
        query = q(text)
    except BadRequest:
        return  # nothing searchable in it: refused before the store
    assert await search.search(query) == []


def test_fts_query_quotes_and_refuses_empty() -> None:
    assert fts_query('say "hello world" now*') == (
        '"say" "hello world" "now"*',
        ("say", "hello world", "now*"),
    )
    assert fts_query('a"b')[0] == '"a""b"'
    with pytest.raises(BadRequest):
        fts_query("  ... ---  ")


def test_segments() -> None:
    assert segments("a \x02b\x03 c") == [("a ", False), ("b", True), (" c", False)]
