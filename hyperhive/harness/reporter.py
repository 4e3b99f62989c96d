"""Reporting the harness's state to the core (`report_state`), best-effort.

`StateTracker` turns the harness's event-bus events into the report the core wants (state,
failure note, when the turn started, the tool running now); `StateReporter` sends the latest
report on its own connection to the agent's socket.

Invariants:
- Never blocks or fails a turn: `StateReporter.set` only records the report and wakes the
  sender task; a core that is down or slow costs nothing but a late report.
- Latest wins: reports not yet sent are replaced, never queued.
- The connection is the reporter's own (the main client's is held by a parked recv). When the
  core closes it (a core restart), the reporter reconnects and sends the latest report again,
  so a restarted core learns the state without waiting for the next change.
- A failed turn stays `failed` (with its note) until a turn succeeds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from hyperhive.wire.framing import MAX_LINE, decode_line, encode_line

logger = logging.getLogger(__name__)

SEND_TIMEOUT = 10.0
BACKOFF_MAX = 30.0
NOTE_MAX = 2000  # the wire's limit on `note`
TOOL_MAX = 200


class StateReporter:
    def __init__(self, socket: str) -> None:
        self.path = socket
        self._latest: dict[str, Any] | None = None
        self._changed = asyncio.Event()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._watch: asyncio.Task[None] | None = None
        self.sent = 0  # reports the core accepted (tests and logs)
        self._refused = False

    async def __aenter__(self) -> StateReporter:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="state-reporter")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for task in (self._task, self._watch):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._watch = None
        await self._close()

    def set(self, report: dict[str, Any]) -> None:
        """Record the latest report; the sender task sends it when it can."""
        if report == self._latest:
            return
        self._latest = report
        self._changed.set()

    async def _close(self) -> None:
        w, self._writer, self._reader = self._writer, None, None
        if w is not None:
            w.close()
            with contextlib.suppress(OSError, ConnectionError):
                await w.wait_closed()

    async def _run(self) -> None:
        failures = 0
        while True:
            await self._changed.wait()
            self._changed.clear()
            report = self._latest
            if report is None or self._refused:
                continue
            await self._stop_watch()
            try:
                await asyncio.wait_for(self._send(report), SEND_TIMEOUT)
            except (OSError, ConnectionError, TimeoutError, ValueError, EOFError) as exc:
                await self._close()
                failures += 1
                delay = min(BACKOFF_MAX, 0.5 * 2**failures)
                logger.debug(
                    "state report not sent (%s); again in %.1f s",
                    exc,
                    delay,
                    extra={"action": "state_report_failed"},
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), delay)
                self._changed.set()  # retry (the latest report, whatever it is by now)
                continue
            failures = 0
            self._watch = asyncio.get_running_loop().create_task(
                self._watch_close(), name="state-reporter-watch"
            )

    async def _send(self, report: dict[str, Any]) -> None:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_unix_connection(
                self.path, limit=MAX_LINE + 2
            )
        assert self._reader is not None
        self._writer.write(encode_line({"cmd": "report_state", **report}))
        await self._writer.drain()
        raw = await self._reader.readline()
        if not raw.endswith(b"\n"):
            raise EOFError("the core closed the connection")
        answer = decode_line(raw)
        if isinstance(answer, dict) and answer.get("ok"):
            self.sent += 1
            return
        # a core that does not know the verb (or refuses the report): stop trying
        self._refused = isinstance(answer, dict) and answer.get("code") == "not_supported"
        logger.warning(
            "the core refused a state report: %s",
            answer.get("error") if isinstance(answer, dict) else answer,
            extra={"action": "state_report_refused"},
        )

    async def _watch_close(self) -> None:
        """Idle between reports: when the core closes the connection, report again."""
        reader = self._reader
        if reader is None:
            return
        with contextlib.suppress(OSError, ConnectionError):
            while await reader.read(4096):
                pass
        await self._close()
        self._changed.set()

    async def _stop_watch(self) -> None:
        task, self._watch = self._watch, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class StateTracker:
    """Builds reports from the harness's bus events and hands them to a reporter."""

    def __init__(self, reporter: StateReporter) -> None:
        self.reporter = reporter
        self.state = "offline"
        self.failure: str | None = None
        self.turn_started_at: str | None = None
        self.tool: str | None = None

    def on_event(self, kind: str, ts: str, payload: dict[str, Any]) -> None:
        if kind == "state":
            self.state = str(payload.get("state"))
        elif kind == "turn_start":
            self.turn_started_at = ts
            self.tool = None
        elif kind == "tool_use":
            self.tool = str(payload.get("name") or "")[:TOOL_MAX] or None
        elif kind == "tool_result":
            self.tool = None
        elif kind == "turn_end":
            self.tool = None
            self.turn_started_at = None
            outcome = str(payload.get("kind", ""))
            if payload.get("ok"):
                self.failure = None
            elif outcome != "cancelled":  # an operator's cancel is not a failure
                note = str(payload.get("note") or "")
                if note and outcome != "failed":  # e.g. "rate_limited: retrying in 300 s"
                    note = f"{outcome}: {note}"
                self.failure = (note or outcome)[:NOTE_MAX]
        else:
            return
        report = self.report()
        if report is not None:
            self.reporter.set(report)

    def report(self) -> dict[str, Any] | None:
        if self.state == "thinking":
            out: dict[str, Any] = {"state": "in_turn"}
            if self.turn_started_at:
                out["turn_started_at"] = self.turn_started_at
            if self.tool:
                out["tool"] = self.tool
            return out
        if self.state == "compacting":
            return {"state": "compacting"}
        if self.state in ("waiting", "idle"):
            if self.failure is not None:
                return {"state": "failed", "note": self.failure}
            return {"state": "idle"}
        return None  # offline: nothing to say (the core sees the connection go)
