"""The in-memory fake of `SearchStore`: it searches the rows of the memory message, question
and approval stores it is given (so, like the triggers of the sqlite backend, a row is found
as soon as it is stored and not once it is gone) plus the turn docs it keeps itself.

Matching is simpler than FTS5's and documented as such: lower-cased `\\w+` words, every term
must appear (a quoted phrase as consecutive words, `word*` as a prefix); no stemming. The
contract suite uses queries both agree on.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from hyperhive.core.store.memory import (
    MemoryApprovalStore,
    MemoryMessageStore,
    MemoryQuestionStore,
)
from hyperhive.core.store.search import SearchQuery, SearchStore, TurnDoc, merge
from hyperhive.wire.search import KINDS, SearchHit

_WORDS = re.compile(r"\w+", re.UNICODE)


def _words(text: str) -> list[str]:
    return [w.lower() for w in _WORDS.findall(text)]


def _term_at(words: list[str], term: list[str], prefix: bool, i: int) -> bool:
    for k, t in enumerate(term):
        if i + k >= len(words):
            return False
        last = k == len(term) - 1
        w = words[i + k]
        if not (w.startswith(t) if (prefix and last) else w == t):
            return False
    return True


def _match(fields: Sequence[str], q: SearchQuery) -> list[tuple[str, bool]] | None:
    """Snippet segments (of the first field with a hit, as FTS5 picks the best column) when
    every term of `q` occurs in the fields together, else None."""
    if _hits(" ".join(fields), q) is None:
        return None
    for field in fields:
        snip = _hits(field, q, every=False)
        if snip is not None and any(on for _, on in snip):
            return snip
    return _hits(" ".join(fields), q)


def _hits(text: str, q: SearchQuery, every: bool = True) -> list[tuple[str, bool]] | None:
    words = _words(text)
    hit_words: set[int] = set()
    for raw in q.words:
        prefix = raw.endswith("*")
        term = _words(raw.rstrip("*"))
        if not term:
            continue
        found = [i for i in range(len(words)) if _term_at(words, term, prefix, i)]
        if not found and every:
            return None
        for i in found:
            hit_words.update(range(i, i + len(term)))
    out: list[tuple[str, bool]] = []
    for i, w in enumerate(words[:64]):
        if out:
            out.append((" ", False))
        out.append((w, i in hit_words))
    return out


class MemorySearchStore(SearchStore):
    def __init__(
        self,
        messages: MemoryMessageStore,
        questions: MemoryQuestionStore,
        approvals: MemoryApprovalStore,
    ) -> None:
        self._messages = messages
        self._questions = questions
        self._approvals = approvals
        self._turns: dict[tuple[str, int], TurnDoc] = {}
        self._cursors: dict[str, int] = {}

    async def search(self, q: SearchQuery) -> list[SearchHit]:
        kinds = q.kinds or KINDS
        hits: list[SearchHit] = []
        a = q.agent

        def ok(ts: str, *who: str | None) -> bool:
            return (q.since is None or ts >= q.since) and (a is None or a in who)

        if "message" in kinds:
            for m in self._messages._rows.values():
                snip = _match((m.body, m.sender, m.recipient), q)
                if snip is not None and ok(m.sent_at, m.sender, m.recipient):
                    hits.append(
                        SearchHit(
                            kind="message",
                            ref=m.id,
                            ts=m.sent_at,
                            agent=m.sender,
                            peer=m.recipient,
                            title=f"{m.sender} → {m.recipient}",
                            snippet=snip,
                        )
                    )
        if "question" in kinds:
            for qr in self._questions._rows.values():
                snip = _match((qr.question, qr.answer or "", qr.asker), q)
                if snip is not None and ok(qr.asked_at, qr.asker, qr.target):
                    state = "answered" if qr.answered_at else "open"
                    hits.append(
                        SearchHit(
                            kind="question",
                            ref=qr.id,
                            ts=qr.asked_at,
                            agent=qr.asker,
                            title=f"question #{qr.id} ({state})",
                            snippet=snip,
                        )
                    )
        if "approval" in kinds:
            for ar in self._approvals._rows.values():
                text = (ar.description, ar.note, ar.agent, ar.kind, ar.requested_by)
                snip = _match(text, q)
                if snip is not None and ok(ar.requested_at, ar.agent, ar.requested_by):
                    hits.append(
                        SearchHit(
                            kind="approval",
                            ref=ar.id,
                            ts=ar.requested_at,
                            agent=ar.agent,
                            peer=ar.requested_by or None,
                            title=f"approval #{ar.id} {ar.kind} ({ar.status})",
                            snippet=snip,
                        )
                    )
        if "turn" in kinds:
            for d in self._turns.values():
                snip = _match((d.body, d.title, d.agent), q)
                if snip is not None and ok(d.ts, d.agent):
                    hits.append(
                        SearchHit(
                            kind="turn",
                            ref=d.event_id,
                            ts=d.ts,
                            agent=d.agent,
                            title=d.title,
                            snippet=snip,
                        )
                    )
        return merge(hits, q.limit)

    async def add_turns(self, agent: str, docs: Sequence[TurnDoc], cursor: int) -> int:
        added = 0
        for d in docs:
            if (d.agent, d.event_id) not in self._turns:
                self._turns[(d.agent, d.event_id)] = d
                added += 1
        self._cursors[agent] = max(self._cursors.get(agent, 0), cursor)
        return added

    async def turn_cursor(self, agent: str) -> int:
        return self._cursors.get(agent, 0)

    async def forget_turns(
        self, agent: str, *, below_id: int | None = None, before: str | None = None
    ) -> int:
        gone = [
            k
            for k, d in self._turns.items()
            if d.agent == agent
            and ((below_id is not None and d.event_id < below_id) or (before and d.ts < before))
        ]
        for k in gone:
            del self._turns[k]
        return len(gone)

    async def reset_turns(self, agent: str) -> int:
        self._cursors.pop(agent, None)
        gone = [k for k in self._turns if k[0] == agent]
        for k in gone:
            del self._turns[k]
        return len(gone)

    async def turn_agents(self) -> list[str]:
        return sorted(self._cursors)
