"""Spans of the harness's turns (OpenTelemetry, only when `hyperhive.tracing` is on).

From the harness's event bus: a `turn` span per turn, whose parent is the span named on the
wake message (`trace_parent`: the sender's turn, or the operator's message), with the wake
message's id; inside it a `tool <name>` span per tool call (tool_use → its tool_result) and a
`model request` span per assistant message the stream shows (from the turn's start or the
last tool result to the message's arrival: the stream gives no finer timing).

While a turn runs, its span's traceparent is in `<run_dir>/traceparent`: the hyperhive MCP
server (started by the CLI, the harness's grandchild) reads it on `send`, so a message sent in
the turn carries the turn as its parent and the recipient's turn joins the same trace.

Invariants: never raises into the bus (the bus logs listener errors anyway, but a tracer
problem must not even cost a log line per event); spans left open by an interrupted turn are
ended with the turn; the traceparent file is written atomically and removed at turn end.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path
from typing import Any

from hyperhive import tracing

logger = logging.getLogger(__name__)

TRACE_FILE = "traceparent"
MODEL_KINDS = frozenset({"text", "tool_use", "thinking"})


class TurnTracer:
    def __init__(self, tracer: Any, run_dir: Path, agent: Any) -> None:
        self.tracer = tracer
        self.file = run_dir / TRACE_FILE
        self.agent = agent  # the harness (its name and model are known only after whoami)
        self.turn: Any = None
        self._ctx: Any = None
        self._tools: dict[str, Any] = {}
        self._messages: set[str] = set()
        self._boundary = 0

    @classmethod
    def create(cls, run_dir: Path, agent: Any) -> TurnTracer | None:
        t = tracing.tracer(__name__, service="hyperhive-harness")
        return cls(t, run_dir, agent) if t is not None else None

    def on_event(self, kind: str, payload: dict[str, Any]) -> None:
        try:
            self._on_event(kind, payload)
        except Exception:  # tracing must never disturb a turn
            logger.debug("tracing failed on %s", kind, exc_info=True)

    def _on_event(self, kind: str, payload: dict[str, Any]) -> None:
        if kind == "turn_start":
            self._start(payload)
        elif self.turn is None:
            return
        elif kind in MODEL_KINDS:
            self._model(payload)
            if kind == "tool_use":
                name = str(payload.get("name") or "?")
                self._tools[str(payload.get("id"))] = self.tracer.start_span(
                    f"tool {name}", context=self._ctx, attributes={"hyperhive.tool": name}
                )
        elif kind == "tool_result":
            span = self._tools.pop(str(payload.get("tool_use_id")), None)
            if span is not None:
                if payload.get("is_error"):
                    span.set_attribute("error", True)
                span.end()
            self._boundary = time.time_ns()
        elif kind == "turn_end":
            self._end(payload)

    def _start(self, payload: dict[str, Any]) -> None:
        if self.turn is not None:  # a turn_end never came: close the old one first
            self._end({"ok": False, "kind": "abandoned"})
        from opentelemetry import trace

        attrs = {
            "hyperhive.agent": str(getattr(self.agent, "name", "?")),
            "hyperhive.wake_message_id": int(payload.get("id") or 0),
            "hyperhive.wake_from": str(payload.get("from") or ""),
            "gen_ai.request.model": str(getattr(self.agent, "model", "")),
        }
        self.turn = self.tracer.start_span(
            "turn", context=tracing.context_of(payload.get("trace_parent")), attributes=attrs
        )
        self._ctx = trace.set_span_in_context(self.turn)
        self._messages.clear()
        self._boundary = time.time_ns()
        tp = tracing.traceparent_of(self.turn)
        if tp:
            tmp = self.file.with_name(f".{TRACE_FILE}.tmp")
            tmp.write_text(tp)
            os.replace(tmp, self.file)

    def _model(self, payload: dict[str, Any]) -> None:
        mid = str(payload.get("message_id") or "")
        if not mid or mid in self._messages or payload.get("parent_tool_use_id"):
            return
        self._messages.add(mid)
        span = self.tracer.start_span(
            "model request",
            context=self._ctx,
            start_time=self._boundary,
            attributes={"hyperhive.message_id": mid},
        )
        span.end()

    def _end(self, payload: dict[str, Any]) -> None:
        from opentelemetry.trace import Status, StatusCode

        for span in self._tools.values():
            span.end()
        self._tools.clear()
        turn, self.turn, self._ctx = self.turn, None, None
        with contextlib.suppress(OSError):
            self.file.unlink()
        if turn is None:
            return
        turn.set_attribute("hyperhive.result", str(payload.get("kind") or ""))
        if not payload.get("ok"):
            turn.set_status(Status(StatusCode.ERROR, str(payload.get("note") or "")[:200]))
        turn.end()
