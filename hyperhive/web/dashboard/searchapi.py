"""`GET /api/search`: the dashboard's search box, over the search feature (`core/search.py`).

Query parameters are validated exactly as the OpenAPI document describes them (the
conformance test holds both directions), then like the host verb's fields (`SearchFields`):
`q` (required, 1..500 chars), `agent` (a name), `kind` (comma-separated kinds), `since`
(`<n>[smhdw]`), `limit` (1..200). Every failure is the one error shape (400 for bad input,
`not_supported` when the hive runs without the search feature).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, cast

from pydantic import ValidationError
from starlette.requests import Request

from hyperhive.config import format_validation_error
from hyperhive.core.store.search import NothingToSearch
from hyperhive.errors import BadRequest
from hyperhive.names import validate_name
from hyperhive.wire.search import KINDS_PATTERN, SINCE_PATTERN, SearchFields, parse_since

if TYPE_CHECKING:
    from hyperhive.core.hive import Hive
    from hyperhive.core.search import SearchFeature


def _param(request: Request, name: str, pattern: str | None = None) -> str | None:
    """A query parameter as documented: absent → None; present (even empty) → checked against
    `pattern` (the OpenAPI document's, matched whole)."""
    value = request.query_params.get(name)
    if value is None or pattern is None:
        return value
    if not re.fullmatch(pattern.strip("^$"), value):
        raise BadRequest(f"{name} must match {pattern}, got {value[:40]!r}")
    return value


def fields_of(request: Request) -> SearchFields:
    """The search asked for; `BadRequest` (or `InvalidName` for `agent`) for anything the API
    document does not allow."""
    data: dict[str, Any] = {"query": _param(request, "q")}
    agent = _param(request, "agent")
    if agent is not None:
        data["agent"] = validate_name(agent)
    kinds = _param(request, "kind", KINDS_PATTERN)
    if kinds is not None:
        data["kinds"] = list(dict.fromkeys(kinds.split(",")))
    since = _param(request, "since", SINCE_PATTERN)
    if since is not None:
        data["since_seconds"] = parse_since(since)
    limit = _param(request, "limit")
    if limit is not None:
        data["limit"] = limit
    try:
        return SearchFields.model_validate(data)
    except ValidationError as exc:
        raise BadRequest(format_validation_error("search", exc)) from None


async def search(hive: Hive, request: Request) -> dict[str, Any]:
    """The answer of `GET /api/search` (the route is declared in `api.py`). A query with no
    word in it (only punctuation) matches nothing: an empty answer saying so, not an error
    (the API document cannot say "a word" in every script the way the server does)."""
    feature = cast("SearchFeature", hive.feature("search"))
    fields = fields_of(request)
    try:
        answer = await feature.search(fields)
    except NothingToSearch as exc:
        return {"hits": [], "query": "", "message": str(exc)}
    return answer.model_dump(mode="json", exclude_none=True, exclude={"ok"})
