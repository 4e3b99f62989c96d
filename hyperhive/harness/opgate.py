"""`OperatorGate`: the `PermissionGate` of an agent with `ask_operator_for` patterns — a tool
use the CLI asks about goes to the operator through the core (`ask_permission`), and the turn
waits for the decision.

Why the CLI asks at all: the harness writes the patterns into the settings' `permissions.ask`
list, which Claude Code checks before `allow` (deny > ask > allow; measured with 2.1.337: an
`ask` rule `Bash(git push:*)` beside `allow: ["Bash"]` sends `can_use_tool` for `git push` and
runs `echo hi` without asking). A tool without any rule is asked about too (in `-p` mode it
would be refused); such a tool is not one the operator was meant to see, so this gate denies
it as `RefuseUnlisted` does (the allow/deny lists decide), without asking.

Invariants:
- Each ask goes on a connection of its own to the agent's socket, never the harness's main
  one: an ask may park for many minutes, while the harness keeps renewing its woken message's
  lease on its own connection, and the CLI may ask about several tools at once (parallel
  tool uses: `AgentClient` serialises requests per connection, so one shared connection would
  queue the second ask behind the first decision). A parked request is never idle
  (`[sockets] idle_timeout_seconds` counts only silence between requests).
- Each ask carries a key of this harness run; the client's resend after a lost connection
  (a core restart) joins the same request. A new gate (a new harness run) has a new run id,
  and the core drops what an earlier run left pending.
- A cancelled ask (the driver's answer task cancelled: a closed CLI), or one still open when
  the turn ends (`turn_ended`: its result came, or it was interrupted), closes its connection
  and withdraws the request, best effort, on a fresh one; the operator no longer sees it.
- The gate never raises for a refusal: a core it cannot reach is a denial whose note says so.
- Long strings in the input are shortened for display only; the decision applies to the
  input the model wrote (`Allow()` carries no `updated_input`).
- Pure of pydantic (the harness does not import it): requests are plain JSON.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hyperhive import permrules
from hyperhive.client.agent import NO_RETRY, AgentClient, RetryPolicy
from hyperhive.errors import HiveError
from hyperhive.harness.permgate import (
    Allow,
    Deny,
    PermissionAsk,
    PermissionDecision,
    PermissionGate,
)
from hyperhive.harness.warmhooks import RefuseUnlisted

logger = logging.getLogger(__name__)

SHOWN_STRING_MAX = 4000  # characters of one input string the operator is shown
SHOWN_DEPTH_MAX = 8
WITHDRAW_TIMEOUT = 10.0
WITHDRAWN_NOTE = "[withdrawn: the turn ended before the operator decided]"

Notify = Callable[[str], object]
OnWait = Callable[[bool], object]  # True: an ask is open; False: none is any more


class _Abandoned(Exception):
    """The turn ended while the ask was open."""


def shown_input(value: Any, depth: int = 0) -> Any:
    """The tool input with long strings shortened (display only), JSON-able."""
    if isinstance(value, str):
        if len(value) <= SHOWN_STRING_MAX:
            return value
        return value[:SHOWN_STRING_MAX] + f"… [{len(value) - SHOWN_STRING_MAX} more characters]"
    if depth >= SHOWN_DEPTH_MAX:
        return "…"
    if isinstance(value, dict):
        return {str(k): shown_input(v, depth + 1) for k, v in list(value.items())[:200]}
    if isinstance(value, (list, tuple)):
        return [shown_input(v, depth + 1) for v in list(value)[:200]]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return repr(value)[:SHOWN_STRING_MAX]


def describe(tool: str, tool_input: dict[str, Any]) -> str:
    """One line naming the use: `Bash(git push)`, `Write(/state/a.txt)`, or the tool."""
    for key in ("command", "file_path", "notebook_path", "path", "url"):
        value = tool_input.get(key)
        if isinstance(value, str) and value:
            line = " ".join(value.split())
            return f"{tool}({line[:200]}{'…' if len(line) > 200 else ''})"
    return tool


class OperatorGate:
    def __init__(
        self,
        socket: str | Path,
        ask_for: Sequence[str],
        *,
        cwd: str = "/state",
        home: str = "/state",
        notify: Notify | None = None,
        on_wait: OnWait | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.rules = [permrules.parse(r) for r in ask_for]
        self.run_id = os.urandom(12).hex()  # this harness run
        self._where = {"cwd": cwd, "home": home}
        self._notify = notify
        self._on_wait = on_wait
        self._socket = socket
        self._retry = retry
        self._cleanup: set[asyncio.Task[None]] = set()
        self._open: set[asyncio.Future[None]] = set()  # one per ask in flight: set = abandon
        self._seq = itertools.count(1)
        self._unlisted = RefuseUnlisted()

    async def aclose(self) -> None:
        if self._cleanup:
            await asyncio.gather(*self._cleanup, return_exceptions=True)

    async def decide(self, ask: PermissionAsk) -> PermissionDecision:
        rule = permrules.first_match(
            self.rules,
            ask.tool_name,
            ask.tool_input,
            cwd=self._where["cwd"],
            home=self._where["home"],
        )
        if rule is None:  # not the operator's to decide: as the allow/deny lists would
            return await self._unlisted.decide(ask)
        use = describe(ask.tool_name, ask.tool_input)
        body: dict[str, Any] = {
            "cmd": "ask_permission",
            "tool": ask.tool_name,
            "input": shown_input(ask.tool_input),
            "rule": str(rule),
            "key": f"{self.run_id}:{ask.tool_use_id or next(self._seq)}",
            "harness": self.run_id,
        }
        if ask.tool_use_id:
            body["tool_use_id"] = ask.tool_use_id
        if ask.reason:
            body["reason"] = ask.reason[:2000]
        self._say(f"waiting for the operator: may it use {use}?")
        logger.info("asking the operator about %s", use, extra={"action": "permission_ask"})
        abandon: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._open.add(abandon)
        if len(self._open) == 1 and self._on_wait is not None:
            self._on_wait(True)
        try:
            answer = await self._ask(body, abandon)
        except asyncio.CancelledError:
            self._withdraw_soon(body["key"], use)
            raise
        except _Abandoned:
            self._withdraw_soon(body["key"], use)
            return Deny(WITHDRAWN_NOTE)
        except HiveError as exc:
            self._say(f"could not ask the operator about {use}: {exc}")
            return Deny(f"could not ask the operator ({exc}); the tool was not used")
        finally:
            self._open.discard(abandon)
            if not self._open and self._on_wait is not None:
                self._on_wait(False)
        if answer.get("behavior") == "allow":
            self._say(f"the operator allowed {use}")
            return Allow()
        note = str(answer.get("note") or "denied by the operator")
        self._say(f"the operator did not allow {use}: {note}")
        return Deny(note)

    def turn_ended(self) -> None:
        """The turn is over (its result came, or it was interrupted): an ask still open is
        nobody's question any more — each is withdrawn and answered deny."""
        for abandon in list(self._open):
            if not abandon.done():
                abandon.set_result(None)

    async def _ask(self, body: dict[str, Any], abandon: asyncio.Future[None]) -> dict[str, Any]:
        async with AgentClient(self._socket, retry=self._retry) as client:
            request = asyncio.ensure_future(client.request(body))
            waiters: set[asyncio.Future[Any]] = {request, abandon}
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                if not request.done():
                    request.cancel()
                    await asyncio.gather(request, return_exceptions=True)
            if request.cancelled():
                raise _Abandoned
            return request.result()

    def _withdraw_soon(self, key: str, use: str) -> None:
        """The ask was cancelled (the turn was interrupted, the CLI went away; its connection
        is closed with it): the core is told the ask is withdrawn, best effort, so the
        operator no longer sees it."""

        async def withdraw() -> None:
            try:
                async with AgentClient(self._socket, retry=NO_RETRY) as one:
                    async with asyncio.timeout(WITHDRAW_TIMEOUT):
                        await one.request({"cmd": "withdraw_permission", "key": key})
            except (HiveError, TimeoutError) as exc:
                logger.info("could not withdraw the ask about %s: %s", use, exc)
            self._say(f"no longer waiting for the operator about {use}")

        task = asyncio.get_running_loop().create_task(withdraw(), name="permission-withdraw")
        self._cleanup.add(task)
        task.add_done_callback(self._cleanup.discard)

    def _say(self, text: str) -> None:
        if self._notify is not None:
            self._notify(text)


def gate_for(
    socket: str | Path,
    ask_for: Sequence[str],
    *,
    cwd: str = "/state",
    home: str = "/state",
    notify: Notify | None = None,
    on_wait: OnWait | None = None,
) -> PermissionGate:
    """The gate an agent's harness runs with: `RefuseUnlisted` (the allow/deny lists alone
    decide) when it asks nothing of the operator."""
    if not ask_for:
        return RefuseUnlisted()
    return OperatorGate(socket, ask_for, cwd=cwd, home=home, notify=notify, on_wait=on_wait)
