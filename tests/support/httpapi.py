"""Checks shared by the tests of JSON HTTP routes: the one error shape, route templates."""

from __future__ import annotations

import httpx

ERROR_KEYS = {"ok", "error", "code"}


def assert_error(r: httpx.Response, status: int | tuple[int, ...], code: str | None = None) -> None:
    body = r.json()
    assert set(body) == ERROR_KEYS, body
    assert body["ok"] is False and isinstance(body["error"], str) and body["error"]
    assert "\n" not in body["error"]
    statuses = status if isinstance(status, tuple) else (status,)
    assert r.status_code in statuses, (r.status_code, body)
    if code is not None:
        assert body["code"] == code, body


def fill(path: str, **values: str) -> str:
    for key, value in values.items():
        path = path.replace(f"{{{key}:path}}", value).replace(f"{{{key}}}", value)
    return path
