"""Request/response base types, the verb registries and the JSON-line parser.

Invariants:
- A request is one JSON object tagged by `"cmd"` (snake_case); unknown keys are refused.
- A response is one JSON object with `"ok"`; on failure it is the one error shape
  `{"ok": false, "error": str, "code": str}` (see `hyperhive.errors.error_body`).
- Optional response fields are omitted, never null (`dump_response` drops `None`).
- Lines are at most `MAX_LINE` bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, ValidationError

from hyperhive.errors import BadRequest
from hyperhive.wire.framing import MAX_LINE as MAX_LINE
from hyperhive.wire.framing import decode_line
from hyperhive.wire.framing import encode_line as encode_line


class Request(BaseModel):
    """Base of every request. Subclasses set `cmd: Literal["..."]`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    cmd: str

    def may_park(self) -> bool:
        """True when answering may wait a long time (the server then watches the connection
        and cancels the handler if the client goes away)."""
        return False


class Response(BaseModel):
    """Base of every success response."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    ok: Literal[True] = True


class Ok(Response):
    """A bare success."""


Scope = Literal["agent", "manager", "host"]


class VerbRegistry:
    """Maps `cmd` to its request model for one socket flavour."""

    def __init__(self, scope: Scope, parent: VerbRegistry | None = None) -> None:
        self.scope = scope
        self.parent = parent
        self._verbs: dict[str, type[Request]] = {}

    def add(self, model: type[Request]) -> type[Request]:
        field = model.model_fields["cmd"]
        args = get_args(field.annotation)
        if len(args) != 1 or not isinstance(args[0], str):
            raise TypeError(f"{model.__name__}.cmd must be a single Literal string")
        self._verbs[args[0]] = model
        return model

    def get(self, cmd: str) -> type[Request] | None:
        found = self._verbs.get(cmd)
        if found is None and self.parent is not None:
            return self.parent.get(cmd)
        return found

    def names(self) -> list[str]:
        own = set(self._verbs)
        if self.parent is not None:
            own |= set(self.parent.names())
        return sorted(own)

    def items(self) -> Mapping[str, type[Request]]:
        merged = dict(self.parent.items()) if self.parent else {}
        merged.update(self._verbs)
        return merged


AGENT_VERBS = VerbRegistry("agent")
MANAGER_VERBS = VerbRegistry("manager", parent=AGENT_VERBS)
HOST_VERBS = VerbRegistry("host")

_REGISTRIES: dict[str, VerbRegistry] = {
    "agent": AGENT_VERBS,
    "manager": MANAGER_VERBS,
    "host": HOST_VERBS,
}


def verb(*scopes: Scope) -> Any:
    """Class decorator: register a request model in the named registries."""

    def deco(model: type[Request]) -> type[Request]:
        for scope in scopes:
            _REGISTRIES[scope].add(model)
        return model

    return deco


def _format_errors(cmd: str, exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(request)"
        if err["type"] == "extra_forbidden":
            parts.append(f"unknown field {loc!r}")
        elif err["type"] == "missing":
            parts.append(f"missing field {loc!r}")
        else:
            parts.append(f"{loc}: {err['msg']}")
    return f"bad {cmd!r} request: " + "; ".join(parts)


def parse_request(line: bytes | str, verbs: VerbRegistry) -> Request:
    """Parse one request line; raise `BadRequest` with a one-line reason on any problem."""
    if len(line) > MAX_LINE:
        raise BadRequest(f"request line is over {MAX_LINE} bytes")
    try:
        obj = decode_line(line)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"request is not valid JSON: {exc}") from None
    return parse_object(obj, verbs)


def parse_object(obj: object, verbs: VerbRegistry) -> Request:
    if not isinstance(obj, dict):
        raise BadRequest(f"request must be a JSON object, got {type(obj).__name__}")
    cmd = obj.get("cmd")
    if not isinstance(cmd, str):
        raise BadRequest('request needs a string "cmd" field naming the verb')
    model = verbs.get(cmd)
    if model is None:
        raise BadRequest(f"unknown verb {cmd!r}; this socket speaks: {', '.join(verbs.names())}")
    try:
        return model.model_validate(obj)
    except ValidationError as exc:
        raise BadRequest(_format_errors(cmd, exc)) from None


def dump_response(resp: Response | Mapping[str, object], **extra: object) -> dict[str, object]:
    """The dict to send: aliases applied, `None` fields omitted."""
    if isinstance(resp, Response):
        body: dict[str, object] = resp.model_dump(mode="json", by_alias=True, exclude_none=True)
    else:
        body = {k: v for k, v in resp.items() if v is not None}
    body.update(extra)
    return body
