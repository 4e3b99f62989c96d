"""The search store interface (`SearchStore`), its value types and the query builder every
backend shares.

What is searchable: messages (body, sender, recipient), operator questions (question, answer,
asker), approvals (description, note, agent, kind, requester) and turn history (`TurnDoc`s the
core copies from each agent's event store: prompts, assistant text, tool calls and results).

Invariants (every backend, proven by `tests/core/store/test_search_contract.py`):
- The index is kept in step on write: a message, question or approval is searchable as soon
  as its insert (or its answer / decision) committed, and leaves the index in the same
  transaction that deletes its row (retention). Nothing is rebuilt on read.
- `search` never raises on user text: `fts_query` quotes every term, so no query is an FTS
  syntax error; a query without a searchable word is `BadRequest`.
- Hits are newest first; at most `limit` in all; each carries a snippet as
  `[text, highlighted]` segments.
- Turn docs of one agent are unique by `event_id`; `turn_cursor` is the highest event id the
  indexer has seen for that agent (0 when none), kept by `add_turns` in the same transaction.
"""

from __future__ import annotations

import abc
import re
from collections.abc import Sequence
from dataclasses import dataclass

from hyperhive.errors import BadRequest
from hyperhive.wire.search import Kind, SearchHit

# snippet markers: bytes no user text is left with (they are stripped from indexed text)
MARK_ON = "\x02"
MARK_OFF = "\x03"
SNIPPET_TOKENS = 16
_TERM = re.compile(r'"([^"]*)"|(\S+)')
_WORD = re.compile(r"\w", re.UNICODE)


@dataclass(frozen=True)
class SearchQuery:
    """`fts`: the built query (`fts_query`); `words`: its terms for fakes; `since`: RFC 3339
    lower bound on the row's time; `agent`: rows `agent` took part in."""

    fts: str
    words: tuple[str, ...]
    agent: str | None = None
    kinds: tuple[Kind, ...] = ()
    since: str | None = None
    limit: int = 20


@dataclass(frozen=True)
class TurnDoc:
    """One searchable event of an agent's turn history."""

    agent: str
    event_id: int
    ts: str
    kind: str  # prompt | assistant | tool_use | tool_result
    title: str
    body: str


class NothingToSearch(BadRequest):
    """The query holds no word (only spaces and punctuation)."""


def clean(text: str) -> str:
    """Text as indexed and searched: the snippet markers and NUL characters removed."""
    return text.replace(MARK_ON, "").replace(MARK_OFF, "").replace("\x00", "")


def fts_query(text: str) -> tuple[str, tuple[str, ...]]:
    """The user's text as an FTS5 query: every term (a word, or a `"quoted phrase"`) becomes a
    quoted string (a trailing `*` on a word keeps its prefix meaning), terms are ANDed. Returns
    the query and its terms; `BadRequest` when no term has a word character in it."""
    parts: list[str] = []
    words: list[str] = []
    for m in _TERM.finditer(clean(text)):
        term = m.group(1) if m.group(1) is not None else m.group(2)
        prefix = m.group(2) is not None and term.endswith("*")
        term = term.rstrip("*") if prefix else term
        if not _WORD.search(term):
            continue
        quoted = '"' + term.replace('"', '""') + '"'
        parts.append(quoted + ("*" if prefix else ""))
        words.append(term.lower() + ("*" if prefix else ""))
    if not parts:
        raise NothingToSearch(f"nothing to search for in {text[:80]!r}: give at least one word")
    return " ".join(parts), tuple(words)


def segments(snippet: str) -> list[tuple[str, bool]]:
    """A snippet with markers → `[text, highlighted]` segments (unbalanced markers tolerated)."""
    out: list[tuple[str, bool]] = []
    on = False
    buf = ""
    for ch in snippet:
        if ch in (MARK_ON, MARK_OFF):
            if buf:
                out.append((buf, on))
            buf = ""
            on = ch == MARK_ON
        else:
            buf += ch
    if buf:
        out.append((buf, on))
    return out


def merge(hits: Sequence[SearchHit], limit: int) -> list[SearchHit]:
    """Hits of every kind, newest first (then kind, then id, descending), cut to `limit`."""
    return sorted(hits, key=lambda h: (h.ts, h.kind, h.ref), reverse=True)[:limit]


class SearchStore(abc.ABC):
    @abc.abstractmethod
    async def search(self, q: SearchQuery) -> list[SearchHit]:
        """Hits for `q` (see the module invariants); `link` is left to the caller."""

    @abc.abstractmethod
    async def add_turns(self, agent: str, docs: Sequence[TurnDoc], cursor: int) -> int:
        """Index `docs` of `agent` (an event id already indexed is skipped) and move its
        cursor to `cursor` (never backwards), in one transaction. Returns how many were new."""

    @abc.abstractmethod
    async def turn_cursor(self, agent: str) -> int: ...

    @abc.abstractmethod
    async def forget_turns(
        self, agent: str, *, below_id: int | None = None, before: str | None = None
    ) -> int:
        """Delete `agent`'s turn docs with `event_id < below_id` or `ts < before` (the rows
        its own event store no longer has). Returns how many."""

    @abc.abstractmethod
    async def reset_turns(self, agent: str) -> int:
        """Forget every turn doc of `agent` and its cursor (its event store started over)."""

    @abc.abstractmethod
    async def turn_agents(self) -> list[str]:
        """The agents with a turn cursor (indexed at least once), by name."""
