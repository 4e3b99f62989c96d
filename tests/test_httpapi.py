"""`hyperhive.httpapi`: the one error shape for Starlette's own errors (no route, wrong method),
kept in step for the dashboard, the agent port and the harness's API, and `/send` bodies."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hyperhive.httpapi import error_response, http_error_response, read_message_body
from hyperhive.wire.framing import BODY_MAX


async def send(request: Request) -> Response:
    try:
        return JSONResponse({"ok": True, "text": await read_message_body(request)})
    except Exception as exc:
        return error_response(exc)


async def teapot(request: Request) -> Response:
    raise HTTPException(418, "short and stout")


APP = Starlette(
    routes=[Route("/send", send, methods=["POST"]), Route("/teapot", teapot)],
    exception_handlers={HTTPException: http_error_response},
)


def client() -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=APP), base_url="http://t")


async def test_starlette_errors_answer_the_one_shape() -> None:
    async with client() as http:
        missing = await http.get("/nope")
        assert missing.status_code == 404
        assert missing.json() == {"ok": False, "error": "no route GET /nope", "code": "not_found"}
        wrong = await http.get("/send")
        assert wrong.status_code == 405 and wrong.headers["allow"] == "POST"
        assert wrong.json()["code"] == "bad_request" and wrong.json()["ok"] is False
        odd = await http.get("/teapot")
        assert odd.status_code == 418 and "short and stout" in odd.json()["error"]


async def test_message_bodies_are_checked() -> None:
    async with client() as http:
        ok = await http.post("/send", json={"body": "hi"})
        assert ok.json() == {"ok": True, "text": "hi"}
        for bad in ({"body": "  "}, {"text": "hi"}, ["hi"], {"body": "x" * (BODY_MAX + 1)}):
            r = await http.post("/send", json=bad)
            assert r.status_code == 400 and r.json()["code"] == "bad_request", bad
