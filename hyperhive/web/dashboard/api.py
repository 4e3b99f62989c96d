"""The dashboard's JSON API: one route per thing the page shows or does.

Every route is an `ApiSpec` (method, path, summary, body model, query parameters) so the
OpenAPI document and the error-shape test walk the same table. Handlers call the same core
functions as the host socket verbs (`core/verbs_host.py`, `core/verbs_lifecycle.py`), never the
socket itself.

Invariants:
- Success is `{"ok": true, "message": ..., ...}`; every failure is the one error shape
  `{"ok": false, "error", "code"}` with the exception's `http_status` (`errors.error_body`);
  an unexpected exception is logged and answered `internal` / 500 — a request never kills the
  daemon.
- Agent names pass `validate_name` before use (path routes capture the whole segment, so
  `../x` is refused as an invalid name, never resolved); ids are positive integers; a POST body
  is a JSON object validated by its pydantic model (unknown keys are refused).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hyperhive.config import format_validation_error
from hyperhive.core.attention import gather as gather_attention
from hyperhive.core.logs import MAX_LINES, read_logs
from hyperhive.errors import BadRequest, Conflict, HiveError, NotFound
from hyperhive.httpapi import SEND_BODY_MAX, error_response, parse_json, read_body
from hyperhive.names import BROADCAST, NAME_PATTERN, OPERATOR, validate_name
from hyperhive.web.dashboard import searchapi
from hyperhive.web.dashboard.permissions import DECISIONS, PermissionNoteBody
from hyperhive.web.dashboard.permissions import decide as decide_permission
from hyperhive.web.dashboard.statecache import SharedState
from hyperhive.web.dashboard.views import build_inbox_views
from hyperhive.wire.agent import BODY_MAX
from hyperhive.wire.approvals import DESCRIPTION_MAX, NOTE_MAX
from hyperhive.wire.followups import ANSWER_TEXT_MAX, OPTION_MAX, OPTIONS_MAX
from hyperhive.wire.search import KINDS, KINDS_PATTERN, LIMIT_MAX, QUERY_MAX, SINCE_PATTERN

if TYPE_CHECKING:
    from hyperhive.core.hive import Hive
    from hyperhive.core.lifecycle import Lifecycle

logger = logging.getLogger(__name__)

BODY_BYTES_MAX = SEND_BODY_MAX  # a schema-valid reply of BODY_MAX characters always fits


# -- request bodies ----------------------------------------------------------------------------


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EmptyBody(_Body):
    """No fields (an empty body or `{}`)."""


class NoteBody(_Body):
    note: str = Field(default="", max_length=NOTE_MAX)


class AnswerBody(_Body):
    options: list[Annotated[str, Field(max_length=OPTION_MAX)]] = Field(
        default_factory=list, max_length=OPTIONS_MAX
    )
    text: str | None = Field(default=None, max_length=ANSWER_TEXT_MAX)


# the name's pattern is documented, not enforced by the model: `validate_name` refuses a bad
# one with its own code (invalid_name) and message
NAME_DOC: dict[str, Any] = {"pattern": NAME_PATTERN}
RECIPIENT_DOC: dict[str, Any] = {
    "pattern": r"^(?:[a-z0-9][a-z0-9-]{0,62}|\*)$"
}  # an agent or "*" (everyone)


class SpawnBody(_Body):
    name: str = Field(min_length=1, max_length=63, json_schema_extra=NAME_DOC)
    description: str = Field(default="", max_length=DESCRIPTION_MAX)


class ReviveBody(_Body):
    description: str = Field(default="", max_length=DESCRIPTION_MAX)


class ReplyBody(_Body):
    to: str = Field(min_length=1, max_length=63, json_schema_extra=RECIPIENT_DOC)
    body: str = Field(min_length=1, max_length=BODY_MAX)


# -- the route table ---------------------------------------------------------------------------


@dataclass(frozen=True)
class QueryParam:
    name: str
    kind: str  # integer | string
    description: str
    enum: tuple[str, ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    required: bool = False
    schema: dict[str, Any] = field(default_factory=dict)  # more of its JSON schema


@dataclass(frozen=True)
class ApiSpec:
    """One JSON route. `path` uses Starlette syntax; `openapi_path` the OpenAPI one."""

    method: str
    path: str
    summary: str
    tag: str
    handler: Callable[[Request, BaseModel], Awaitable[dict[str, Any]]]
    body: type[BaseModel] | None = None
    query: tuple[QueryParam, ...] = ()
    path_params: tuple[str, ...] = field(default=())

    @property
    def openapi_path(self) -> str:
        return self.path.replace(":path}", "}")

    def route(self) -> Route:
        return Route(self.path, _endpoint(self), methods=[self.method], name=self.summary)


async def parse_body(request: Request, model: type[BaseModel]) -> BaseModel:
    """The request's JSON object validated by `model` (an empty body reads as `{}`)."""
    raw = await read_body(request, BODY_BYTES_MAX)
    data = parse_json(raw) if raw.strip() else {}
    if not isinstance(data, dict):
        raise BadRequest(f"the body must be a JSON object, not {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise BadRequest(format_validation_error("body", exc)) from None


def _endpoint(spec: ApiSpec) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            body: BaseModel = EmptyBody()
            if spec.body is not None:
                body = await parse_body(request, spec.body)
            payload = await spec.handler(request, body)
        except HiveError as exc:
            logger.info(
                "%s %s refused: %s",
                spec.method,
                request.url.path,
                exc,
                extra={"action": "dashboard_refused", "code": exc.code},
            )
            return error_response(exc)
        except Exception as exc:
            logger.exception(
                "%s %s failed", spec.method, request.url.path, extra={"action": "dashboard_error"}
            )
            return error_response(exc)
        return JSONResponse({"ok": True, **payload})

    endpoint.__doc__ = spec.summary
    return endpoint


# -- parameters --------------------------------------------------------------------------------


def agent_param(request: Request) -> str:
    return validate_name(request.path_params["name"])


def id_param(request: Request) -> int:
    raw = str(request.path_params["id"])
    if not raw.isdigit() or len(raw) > 18 or int(raw) < 1:
        raise BadRequest(f"bad id {raw[:40]!r}: want a positive integer")
    return int(raw)


def int_query(request: Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an integer, got {raw[:40]!r}") from None
    if not lo <= value <= hi:
        raise BadRequest(f"{name} must be between {lo} and {hi}, got {value}")
    return value


# -- the routes --------------------------------------------------------------------------------

AGENT_ACTIONS: dict[str, str] = {
    "start": "Start an agent's sandbox.",
    "stop": "Stop an agent gracefully (it stays stopped across daemon restarts).",
    "restart": "Restart an agent's sandbox (no config rebuild).",
    "rebuild": "Re-create an agent's sandbox from its applied config.",
    "kill": "Kill an agent at once (no graceful shutdown).",
    "pause": "Pause an agent: its messages queue unread until unpaused.",
    "unpause": "Unpause an agent: queued messages are delivered.",
    "destroy": "Destroy an agent; its state and config are kept (a tombstone).",
    "purge": "Destroy an agent and wipe its state, config history and credentials (no undo).",
}
_DONE = {
    "start": "started",
    "stop": "stopped",
    "restart": "restarted",
    "rebuild": "rebuilt",
    "kill": "killed",
    "pause": "paused",
    "unpause": "unpaused",
    "destroy": "destroyed",
    "purge": "purged",
}


def _lifecycle(hive: Hive) -> Lifecycle:
    return hive.lifecycle  # FeatureMissing (NotSupported) when the hive runs without it


async def _agent_action(hive: Hive, action: str, name: str) -> None:
    hive.registry.require(name)
    if action in ("pause", "unpause"):
        await hive.registry.update(name, paused=action == "pause")
        return
    lc = _lifecycle(hive)
    if action == "start":
        await lc.start_agent(name)
    elif action == "stop":
        await lc.stop_agent(name, graceful=True)
    elif action == "restart":
        await lc.restart(name)
    elif action == "rebuild":
        await lc.rebuild(name)
    elif action == "kill":
        await lc.kill_agent(name)
    elif action in ("destroy", "purge"):
        await lc.destroy(name, purge=action == "purge")
    else:  # the table and this chain are kept in step
        raise BadRequest(f"unknown action {action!r}")


def _invalidating(
    fn: Callable[..., Awaitable[dict[str, Any]]], states: SharedState
) -> Callable[..., Awaitable[dict[str, Any]]]:
    async def act(request: Request, body: BaseModel) -> dict[str, Any]:
        try:
            return await fn(request, body)
        finally:
            states.invalidate()

    act.__name__ = getattr(fn, "__name__", "act")
    act.__doc__ = fn.__doc__
    return act


def api_specs(hive: Hive, shared: SharedState | None = None) -> list[ApiSpec]:
    """Every JSON route of the dashboard, bound to `hive` (`shared`: the `/api/state` builds
    shared with the page route; every POST invalidates it)."""
    specs: list[ApiSpec] = []
    states = shared or SharedState(hive)

    def add(
        method: str,
        path: str,
        summary: str,
        tag: str,
        *,
        body: type[BaseModel] | None = None,
        query: tuple[QueryParam, ...] = (),
        params: tuple[str, ...] = (),
    ) -> Callable[[Callable[..., Awaitable[dict[str, Any]]]], None]:
        def deco(fn: Callable[..., Awaitable[dict[str, Any]]]) -> None:
            if method == "POST":
                fn = _invalidating(fn, states)
            if method == "POST" and body is None:
                specs.append(ApiSpec(method, path, summary, tag, fn, EmptyBody, query, params))
            else:
                specs.append(ApiSpec(method, path, summary, tag, fn, body, query, params))

        return deco

    @add("GET", "/api/state", "Everything the dashboard page shows, in one document.", "state")
    async def state(request: Request, body: BaseModel) -> dict[str, Any]:
        return await states.get()

    @add(
        "GET",
        "/api/attention",
        "What needs the operator: one count per kind, each with a link to the items.",
        "state",
    )
    async def attention(request: Request, body: BaseModel) -> dict[str, Any]:
        items = await gather_attention(hive)
        return {"items": [i.model_dump() for i in items], "total": sum(i.count for i in items)}

    for action, summary in AGENT_ACTIONS.items():

        def make(action: str) -> Callable[[Request, BaseModel], Awaitable[dict[str, Any]]]:
            async def act(request: Request, body: BaseModel) -> dict[str, Any]:
                name = agent_param(request)
                logger.info(
                    "operator: %s %s",
                    action,
                    name,
                    extra={"action": f"dashboard_{action}", "agent": name},
                )
                await _agent_action(hive, action, name)
                return {"message": f"{_DONE[action]} {name}", "agent": name}

            return act

        add("POST", f"/api/agents/{{name:path}}/{action}", summary, "agents", params=("name",))(
            make(action)
        )

    @add(
        "GET",
        "/api/logs/{name:path}",
        "The tail of an agent's captured output.",
        "agents",
        params=("name",),
        query=(
            QueryParam("source", "string", "which log", ("harness", "sandbox")),
            QueryParam(
                "lines",
                "integer",
                f"how many lines (1..{MAX_LINES}, default 200)",
                (),
                1,
                MAX_LINES,
            ),
        ),
    )
    async def logs(request: Request, body: BaseModel) -> dict[str, Any]:
        name = agent_param(request)
        hive.registry.require(name)
        source = request.query_params.get("source") or "harness"
        lines = int_query(request, "lines", 200, 1, MAX_LINES)
        out = read_logs(hive.paths.logs_dir(name), source, lines)
        return {"name": name, "source": source, "lines": out}

    # -- questions ----------------------------------------------------------------------------

    @add(
        "POST",
        "/api/questions/{id}/answer",
        "Answer an operator question: chosen options plus free text (joined with ', ').",
        "questions",
        body=AnswerBody,
        params=("id",),
    )
    async def answer(request: Request, body: BaseModel) -> dict[str, Any]:
        assert isinstance(body, AnswerBody)
        qid = id_param(request)
        q = await hive.questions.answer(qid, body.options, body.text)
        return {"message": f"answered #{q.id} for {q.asker}: {q.answer}", "answer": q.answer}

    @add(
        "POST",
        "/api/questions/{id}/cancel",
        "Cancel an operator question: the asker receives the answer [cancelled].",
        "questions",
        params=("id",),
    )
    async def cancel(request: Request, body: BaseModel) -> dict[str, Any]:
        qid = id_param(request)
        questions = hive.questions
        q, won = await questions.cancel(qid)
        if not won:
            raise Conflict(f"question #{qid} is already resolved (answer: {q.answer})")
        return {"message": f"cancelled #{q.id}; {q.asker} receives {q.answer}"}

    # -- approvals ----------------------------------------------------------------------------

    @add(
        "POST",
        "/api/approvals/{id}/approve",
        "Approve a pending request (with an optional note); the core acts at once.",
        "approvals",
        body=NoteBody,
        params=("id",),
    )
    async def approve(request: Request, body: BaseModel) -> dict[str, Any]:
        assert isinstance(body, NoteBody)
        aid = id_param(request)
        row = await hive.approvals.approve(aid, body.note)
        return {"message": f"approved #{row.id} ({row.kind} {row.agent}): {row.note}".rstrip(": ")}

    @add(
        "POST",
        "/api/approvals/{id}/deny",
        "Deny a pending request (with an optional note).",
        "approvals",
        body=NoteBody,
        params=("id",),
    )
    async def deny(request: Request, body: BaseModel) -> dict[str, Any]:
        assert isinstance(body, NoteBody)
        aid = id_param(request)
        row = await hive.approvals.deny(aid, body.note)
        return {"message": f"denied #{row.id} ({row.kind} {row.agent})"}

    @add(
        "POST",
        "/api/request-spawn",
        "Queue a spawn approval for a new agent (requested by the operator).",
        "approvals",
        body=SpawnBody,
    )
    async def request_spawn(request: Request, body: BaseModel) -> dict[str, Any]:
        assert isinstance(body, SpawnBody)
        row = await hive.approvals.request_spawn(
            body.name, requested_by=OPERATOR, description=body.description
        )
        return {"message": f"queued approval #{row.id}: spawn {row.agent}", "id": row.id}

    # -- tombstones ---------------------------------------------------------------------------

    def require_tombstone(name: str) -> None:
        if hive.registry.get(name) is not None:
            raise Conflict(f"{name} is a live agent, not kept state")
        if not hive.paths.agent_dir(name).is_dir():
            raise NotFound(f"nothing is kept under the name {name!r}")

    @add(
        "POST",
        "/api/tombstones/{name:path}/revive",
        "Queue a spawn approval that recreates a destroyed agent from its kept state.",
        "tombstones",
        body=ReviveBody,
        params=("name",),
    )
    async def revive(request: Request, body: BaseModel) -> dict[str, Any]:
        assert isinstance(body, ReviveBody)
        name = agent_param(request)
        require_tombstone(name)
        row = await hive.approvals.request_spawn(
            name,
            requested_by=OPERATOR,
            description=body.description or f"revive {name} from its kept state",
        )
        return {"message": f"queued approval #{row.id}: revive {name}", "id": row.id}

    @add(
        "POST",
        "/api/tombstones/{name:path}/purge",
        "Wipe a destroyed agent's kept state and config (no undo).",
        "tombstones",
        params=("name",),
    )
    async def purge_tombstone(request: Request, body: BaseModel) -> dict[str, Any]:
        name = agent_param(request)
        require_tombstone(name)
        await _lifecycle(hive).purge(name)
        return {"message": f"purged the kept state of {name}"}

    # -- the operator's inbox -----------------------------------------------------------------

    @add(
        "GET",
        "/api/inbox",
        "The operator's inbox (messages agents sent to `operator`), newest first.",
        "inbox",
        query=(QueryParam("limit", "integer", "how many rows (1..1000, default 50)", (), 1, 1000),),
    )
    async def inbox(request: Request, body: BaseModel) -> dict[str, Any]:
        limit = int_query(request, "limit", 50, 1, 1000)
        rows = build_inbox_views(await hive.broker.recent(OPERATOR, limit))
        return {
            "rows": [r.model_dump() for r in rows],
            "unread": await hive.broker.unread(OPERATOR),
        }

    @add(
        "POST",
        "/api/inbox/reply",
        "Send a message as the operator (`to`: an agent, or `*` for every agent).",
        "inbox",
        body=ReplyBody,
    )
    async def reply(request: Request, body: BaseModel) -> dict[str, Any]:
        assert isinstance(body, ReplyBody)
        to = body.to if body.to == BROADCAST else validate_name(body.to)
        stored = await hive.broker.send(OPERATOR, to, body.body)
        who = ", ".join(m.recipient for m in stored) or "nobody"
        return {"message": f"sent to {who}", "ids": [m.id for m in stored]}

    @add(
        "POST",
        "/api/inbox/read",
        "Mark every message in the operator's inbox read.",
        "inbox",
    )
    async def mark_read(request: Request, body: BaseModel) -> dict[str, Any]:
        rows = await hive.broker.recent(OPERATOR, 1000)
        ids = [m.id for m in rows if m.delivered_at is None]
        await hive.broker.mark_read(OPERATOR, ids)
        return {"message": f"marked {len(ids)} message(s) read"}

    # -- search (searchapi.py) -----------------------------------------------------------------

    @add(
        "GET",
        "/api/search",
        "Full-text search over messages, questions, approvals and turn history.",
        "search",
        query=(
            QueryParam(
                "q",
                "string",
                f"what to look for (words ANDed; ≤ {QUERY_MAX} characters)",
                required=True,
                schema={"minLength": 1, "maxLength": QUERY_MAX},
            ),
            QueryParam("agent", "string", "only rows this agent took part in", schema=NAME_DOC),
            QueryParam(
                "kind",
                "string",
                f"comma-separated kinds: {', '.join(KINDS)}",
                schema={"pattern": KINDS_PATTERN},
            ),
            QueryParam(
                "since",
                "string",
                "only the last duration, e.g. 30m, 2h, 7d",
                schema={"pattern": SINCE_PATTERN},
            ),
            QueryParam(
                "limit", "integer", f"how many hits (1..{LIMIT_MAX}, default 20)", (), 1, LIMIT_MAX
            ),
        ),
    )
    async def search(request: Request, body: BaseModel) -> dict[str, Any]:
        return await searchapi.search(hive, request)

    # -- tool permissions (web/dashboard/permissions.py) --------------------------------------

    for decision, summary in DECISIONS.items():

        def make_decide(decision: str) -> Callable[[Request, BaseModel], Awaitable[dict[str, Any]]]:
            async def decide(request: Request, body: BaseModel) -> dict[str, Any]:
                return await decide_permission(hive, id_param(request), decision, request, body)

            return decide

        add(
            "POST",
            f"/api/permissions/{{id}}/{decision}",
            summary,
            "permissions",
            body=PermissionNoteBody,
            params=("id",),
        )(make_decide(decision))

    return specs
