"""`Dispatcher` on its own: every outcome of a handler is one answer in the one error shape."""

from __future__ import annotations

import logging
from typing import Literal

import pytest

from hyperhive.core.rpc import Caller, Dispatcher, Reply
from hyperhive.errors import NotFound
from hyperhive.wire.base import Ok, Request, Response

ALICE = Caller("alice", "agent")


class Echo(Request):
    cmd: Literal["echo"] = "echo"
    text: str = ""


class Missing(Request):
    cmd: Literal["missing"] = "missing"


class Echoed(Response):
    text: str
    note: str | None = None


def make() -> Dispatcher:
    return Dispatcher()


async def test_a_response_model_is_dumped_without_none_fields() -> None:
    d = make()

    @d.handle(Echo)
    async def echo(caller: Caller, req: Echo) -> Echoed:
        return Echoed(text=f"{caller.name}:{req.text}")

    reply = await d.dispatch(ALICE, Echo(text="hi"))
    assert reply.body == {"ok": True, "text": "alice:hi"}
    assert d.has(Echo) and not d.has(Missing)


async def test_a_plain_dict_and_a_reply_pass_through() -> None:
    d = make()
    sent: list[str] = []

    async def on_sent() -> None:
        sent.append("sent")

    @d.handle(Echo)
    async def echo(caller: Caller, req: Echo) -> Reply | dict[str, object]:
        if req.text == "dict":
            return {"ok": True, "n": 1, "gone": None}
        return Reply({"ok": True}, on_sent=on_sent)

    assert (await d.dispatch(ALICE, Echo(text="dict"))).body == {"ok": True, "n": 1}
    reply = await d.dispatch(ALICE, Echo(text="reply"))
    assert reply.on_sent is on_sent


async def test_an_unknown_verb_is_not_supported() -> None:
    reply = await make().dispatch(ALICE, Missing())
    assert reply.body["ok"] is False
    assert reply.body["code"] == "not_supported"
    assert "missing" in str(reply.body["error"])


async def test_a_hive_error_keeps_its_code() -> None:
    d = make()

    @d.handle(Echo)
    async def echo(caller: Caller, req: Echo) -> Ok:
        raise NotFound("no such agent: bob")

    reply = await d.dispatch(ALICE, Echo())
    assert reply.body == {"ok": False, "error": "no such agent: bob", "code": "not_found"}


async def test_any_other_exception_is_internal_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    d = make()

    @d.handle(Echo)
    async def echo(caller: Caller, req: Echo) -> Ok:
        raise KeyError("oops")

    with caplog.at_level(logging.ERROR, logger="hyperhive.core.rpc"):
        reply = await d.dispatch(ALICE, Echo())
    assert reply.body["ok"] is False
    assert reply.body["code"] == "internal"
    (record,) = [r for r in caplog.records if getattr(r, "action", None) == "rpc_error"]
    assert getattr(record, "agent", None) == "alice"
    assert record.exc_info is not None
