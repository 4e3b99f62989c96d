"""The one exception tree of hyperhive.

Every error a caller can act on is a `HiveError` subclass with a stable `code` string; the wire
layer turns any of them into the one error shape `{"ok": false, "error": <message>, "code": <code>}`
(host socket answers add `"version": 1`; HTTP routes use the same body with a 4xx/5xx status).
Nothing here does I/O.
"""

from __future__ import annotations


class HiveError(Exception):
    """Root of every hyperhive error. `code` is stable and machine-readable."""

    code = "error"
    http_status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class BadRequest(HiveError):
    """The request itself is malformed: not JSON, unknown verb, bad or missing fields."""

    code = "bad_request"
    http_status = 400


class TooLarge(BadRequest):
    """A request body over its route's size cap (refused as it streams in, never read whole)."""

    code = "too_large"
    http_status = 413


class InvalidName(BadRequest):
    """An agent name that is not `[a-z0-9-]{1,63}` starting with a letter or digit (this is how path traversal is refused)."""

    code = "invalid_name"


class NotFound(HiveError):
    """The thing named does not exist (agent, question, approval, ...)."""

    code = "not_found"
    http_status = 404


class Conflict(HiveError):
    """The request is well-formed but the state forbids it (already resolved, already exists)."""

    code = "conflict"
    http_status = 409


class Forbidden(HiveError):
    """The caller may not do this (recipient not allowed, manager targeting itself, bad token)."""

    code = "forbidden"
    http_status = 403


class NotSupported(HiveError):
    """A verb that exists in the protocol but not (yet) in this hive or runtime."""

    code = "not_supported"
    http_status = 501


class ApprovalFailed(HiveError):
    """The operator approved, but acting on it failed (the approval is now `failed`)."""

    code = "approval_failed"


class Unavailable(HiveError):
    """A dependency is not reachable (the core for a client, a runtime tool for the core)."""

    code = "unavailable"
    http_status = 503


class Resync(HiveError):
    """A stream's reader fell too far behind: the stream ends; subscribe again and re-read
    the state."""

    code = "resync"
    http_status = 409


class ConfigError(HiveError):
    """A configuration file (hive.toml, agent.toml) is invalid; the message names the key."""

    code = "config_error"
    http_status = 400


def error_body(exc: BaseException) -> dict[str, object]:
    """The one error shape, for any exception (unknown ones become `internal`)."""
    if isinstance(exc, HiveError):
        return {"ok": False, "error": exc.message, "code": exc.code}
    return {
        "ok": False,
        "error": f"internal error: {type(exc).__name__}: {exc}",
        "code": "internal",
    }


_BY_CODE: dict[str, type[HiveError]] = {
    cls.code: cls
    for cls in (
        HiveError,
        BadRequest,
        TooLarge,
        InvalidName,
        NotFound,
        Conflict,
        Forbidden,
        NotSupported,
        Unavailable,
        ApprovalFailed,
        Resync,
        ConfigError,
    )
}


def from_body(body: dict[str, object]) -> HiveError:
    """Rebuild the error an answer in the one error shape describes."""
    cls = _BY_CODE.get(str(body.get("code", "error")), HiveError)
    return cls(str(body.get("error", "unknown error")))
