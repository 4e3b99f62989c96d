"""The OpenAPI 3.1 document of the dashboard API, generated from the `ApiSpec` table (plus the
event feed routes), so it cannot drift from what is served."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from hyperhive.names import NAME_PATTERN
from hyperhive.web.dashboard.api import ApiSpec

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "The one error shape of every route.",
    "required": ["ok", "error", "code"],
    "properties": {
        "ok": {"const": False},
        "error": {"type": "string", "description": "one line, for people"},
        "code": {
            "type": "string",
            "description": "stable: bad_request, invalid_name, not_found, conflict, "
            "forbidden, unauthorized, not_supported, unavailable, internal, ...",
        },
    },
}
OK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["ok"],
    "properties": {"ok": {"const": True}, "message": {"type": "string"}},
    "additionalProperties": True,
}
ID_MAX = 10**18 - 1  # ids and seqs: at most 18 digits (what the routes parse)
_PARAM_DOCS = {
    "name": {"type": "string", "pattern": NAME_PATTERN, "description": "agent name"},
    "id": {
        "type": "integer",
        "minimum": 1,
        "maximum": ID_MAX,
        "description": "question or approval id",
    },
}
_FEED = [
    (
        "/dashboard/history",
        "The newest dashboard events after `since`: `{seq, epoch, events}`.",
        "application/json",
    ),
    (
        "/dashboard/stream",
        "Server-sent events after `since` / `Last-Event-ID`: `hello`, then `hive` frames "
        "(`id` = seq), `resync` when the client fell behind.",
        "text/event-stream",
    ),
]


def _responses(ok: dict[str, Any], ctype: str = "application/json") -> dict[str, Any]:
    return {
        "200": {"description": "success", "content": {ctype: {"schema": ok}}},
        "default": {
            "description": "an error (4xx/5xx)",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        },
    }


def openapi_document(specs: Iterable[ApiSpec], version: str = "1") -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {"Error": ERROR_SCHEMA}
    for spec in specs:
        op: dict[str, Any] = {
            "summary": spec.summary,
            "tags": [spec.tag],
            "operationId": _op_id(spec),
            "responses": _responses(OK_SCHEMA),
        }
        params = [
            {"name": p, "in": "path", "required": True, "schema": _PARAM_DOCS[p]}
            for p in spec.path_params
        ]
        for q in spec.query:
            schema: dict[str, Any] = {"type": q.kind}
            if q.enum:
                schema["enum"] = list(q.enum)
            if q.minimum is not None:
                schema["minimum"] = q.minimum
            if q.maximum is not None:
                schema["maximum"] = q.maximum
            schema.update(q.schema)
            param: dict[str, Any] = {
                "name": q.name,
                "in": "query",
                "description": q.description,
                "schema": schema,
            }
            if q.required:
                param["required"] = True
            params.append(param)
        if params:
            op["parameters"] = params
        if spec.body is not None:
            name = spec.body.__name__
            schemas[name] = spec.body.model_json_schema()
            op["requestBody"] = {
                # a body with required fields must be sent; an all-default one may be omitted
                "required": bool(schemas[name].get("required")),
                "content": {
                    "application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}
                },
            }
        paths.setdefault(spec.openapi_path, {})[spec.method.lower()] = op
    for path, summary, ctype in _FEED:
        paths[path] = {
            "get": {
                "summary": summary,
                "tags": ["events"],
                "operationId": path.strip("/").replace("/", "_"),
                "parameters": [
                    {
                        "name": "since",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 0, "maximum": ID_MAX},
                    }
                ],
                "responses": _responses({"type": "object"}, ctype),
            }
        }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "hyperhive dashboard API",
            "version": version,
            "description": "State-changing requests need a same-origin `Origin` and the "
            "`X-CSRF-Token` header (the `hh_csrf_<port>` cookie), or an "
            "`Authorization: Bearer <operator token>` header.",
        },
        "paths": paths,
        "components": {"schemas": schemas},
    }


def _op_id(spec: ApiSpec) -> str:
    words = re.sub(r"\{[^}]*\}", "", spec.openapi_path).strip("/").replace("-", "_").split("/")
    return spec.method.lower() + "_" + "_".join(w for w in words if w and w != "api")
