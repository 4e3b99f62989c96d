"""Search over the hive's history: the request and answer of the host verb `search` and the
manager verb `search_history` (the same fields), and one hit.

Invariants:
- `query` is the user's text, never FTS syntax: the store quotes every term (`fts_query`), so
  no input can be a syntax error; a query with no searchable term is refused (`bad_request`).
- A hit's `snippet` is a list of `[text, highlighted]` segments (never markup): every surface
  escapes the text itself and marks the highlighted parts its own way.
- Hits are newest first (`ts`, then kind and id); `ref` is the row's id in its own source
  (message id, question id, approval id, or the agent's event id for a turn).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from hyperhive.errors import BadRequest
from hyperhive.wire.base import Request, Response, verb

Kind = Literal["message", "turn", "question", "approval"]
KINDS: tuple[Kind, ...] = ("message", "turn", "question", "approval")
QUERY_MAX = 500
LIMIT_MAX = 200
SINCE_MAX = 10 * 365 * 86400.0


class SearchFields(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    query: str = Field(min_length=1, max_length=QUERY_MAX)
    agent: str | None = Field(default=None, min_length=1, max_length=63)
    kinds: list[Kind] = Field(default_factory=list, max_length=4)  # empty: every kind
    since_seconds: float | None = Field(default=None, gt=0, le=SINCE_MAX)
    limit: int = Field(default=20, ge=1, le=LIMIT_MAX)


@verb("host")
class Search(Request, SearchFields):
    """Full-text search over messages, questions, approvals and turn history."""

    cmd: Literal["search"]


@verb("manager")
class SearchHistory(Request, SearchFields):
    """The manager's search (`search_history` MCP tool): the same as the host's `search`."""

    cmd: Literal["search_history"]


class SearchHit(BaseModel):
    model_config = ConfigDict(frozen=True)
    kind: Kind
    ref: int
    ts: str
    agent: str  # whose history: sender of a message, asker, approval's agent, the turn's agent
    peer: str | None = None  # a message's recipient, an approval's requester
    title: str = ""  # e.g. "alice → bob", "tool_use Bash", "question #3 (answered)"
    snippet: list[tuple[str, bool]]
    link: str | None = None  # the dashboard path to show it (agent page at that event)


class SearchOk(Response):
    hits: list[SearchHit]
    query: str  # the FTS query actually run (every term quoted)


_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}


def parse_since(text: str) -> float:
    """`90s`, `15m`, `2h`, `3d`, `1w` (or plain seconds) → seconds (at most `SINCE_MAX`);
    `BadRequest` otherwise."""
    raw = text.strip().lower()
    unit = _UNITS.get(raw[-1:], None) if raw else None
    num = raw[:-1] if unit is not None else raw
    try:
        value = float(num) * (unit or 1.0)
    except ValueError:
        raise BadRequest(f"bad duration {text[:40]!r}: want e.g. 30m, 2h, 7d") from None
    if not value > 0:  # also NaN
        raise BadRequest(f"bad duration {text[:40]!r}: want more than 0")
    return min(value, SINCE_MAX)  # longer than the hive can remember: everything


SINCE_PATTERN = r"^[1-9][0-9]{0,8}[smhdw]?$"  # what the dashboard's API documents for `since`
KINDS_PATTERN = r"^(message|turn|question|approval)(,(message|turn|question|approval))*$"
