"""`GET /api/search`: the dashboard's search box, over the search feature (`core/search.py`).

Query parameters are validated like the host verb's fields (the same `SearchFields` model):
`q` (required, ≤ 500 chars), `agent`, `kind` (comma-separated kinds), `since` (a duration:
30m, 2h, 7d), `limit` (1..200). Every failure is the one error shape (400 for bad input,
`not_supported` when the hive runs without the search feature).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from pydantic import ValidationError
from starlette.requests import Request

from hyperhive.config import format_validation_error
from hyperhive.errors import BadRequest
from hyperhive.wire.search import SearchFields, parse_since

if TYPE_CHECKING:
    from hyperhive.core.hive import Hive
    from hyperhive.core.search import SearchFeature


def fields_of(request: Request) -> SearchFields:
    p = request.query_params
    data: dict[str, Any] = {"query": p.get("q", "")}
    if p.get("agent"):
        data["agent"] = p["agent"]
    if p.get("kind"):
        data["kinds"] = [k.strip() for k in p["kind"].split(",") if k.strip()]
    if p.get("since"):
        data["since_seconds"] = parse_since(p["since"])
    if p.get("limit"):
        data["limit"] = p["limit"]
    try:
        return SearchFields.model_validate(data)
    except ValidationError as exc:
        raise BadRequest(format_validation_error("search", exc)) from None


async def search(hive: Hive, request: Request) -> dict[str, Any]:
    """The answer of `GET /api/search` (the route is declared in `api.py`)."""
    feature = cast("SearchFeature", hive.feature("search"))
    answer = await feature.search(fields_of(request))
    return answer.model_dump(mode="json", exclude_none=True, exclude={"ok"})
