"""`GET /api/search`: the dashboard's search box, over the search feature (`core/search.py`).

Query parameters are validated like the host verb's fields (the same `SearchFields` model):
`q` (required, ≤ 500 chars), `agent`, `kind` (comma-separated kinds), `since` (a duration:
30m, 2h, 7d), `limit` (1..200). Every failure is the one error shape (400 for bad input,
`not_supported` when the hive runs without the search feature).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from hyperhive.config import format_validation_error
from hyperhive.errors import BadRequest
from hyperhive.wire.search import KINDS, LIMIT_MAX, QUERY_MAX, SearchFields, parse_since

if TYPE_CHECKING:
    from hyperhive.core.hive import Hive
    from hyperhive.core.search import SearchFeature
    from hyperhive.web.dashboard.api import ApiSpec

SUMMARY = "Full-text search over messages, questions, approvals and turn history."


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


def search_spec(hive: Hive) -> ApiSpec:
    from hyperhive.web.dashboard.api import ApiSpec, QueryParam

    async def search(request: Request, body: BaseModel) -> dict[str, Any]:
        feature = cast("SearchFeature", hive.feature("search"))
        answer = await feature.search(fields_of(request))
        return answer.model_dump(mode="json", exclude_none=True, exclude={"ok"})

    query = (
        QueryParam("q", "string", f"what to look for (words ANDed; ≤ {QUERY_MAX} characters)"),
        QueryParam("agent", "string", "only rows this agent took part in"),
        QueryParam("kind", "string", f"comma-separated kinds: {', '.join(KINDS)}"),
        QueryParam("since", "string", "only the last duration, e.g. 30m, 2h, 7d"),
        QueryParam("limit", "integer", f"how many hits (1..{LIMIT_MAX}, default 20)", (), 1, 200),
    )
    return ApiSpec("GET", "/api/search", SUMMARY, "search", search, None, query)
