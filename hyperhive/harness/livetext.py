"""Live text: assistant text and thinking as they stream (the CLI's `stream_event` lines, with
`--include-partial-messages`), coalesced into `partial` bus events for the agent page.

`LiveText.feed(event)` takes every `Partial` of a run and answers the payloads to publish: each
carries the block's whole text so far (`block` = `<message id>:<index>`, `kind` = text |
thinking), so a page that missed one still shows the right text, and a page opened mid-turn
shows the reply so far. At most one payload per block per `interval` seconds (a delta that
arrives sooner waits for the next one or is simply covered by the final row).

Invariants: pure bookkeeping (the caller publishes; no I/O, no clock of its own: `now` is
passed in); `partial` events are live only (the bus keeps them in its ring, never in the
event log); the page replaces a block's live row with the final `text` / `thinking` row when
that arrives, and drops any left at `turn_end`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hyperhive.harness.streamevents import Partial

INTERVAL = 0.15  # seconds between two live updates of one block
MAX_CHARS = 20_000  # a block's live text is clipped at the end beyond this (the final row is whole)


@dataclass
class _Block:
    kind: str
    text: str = ""
    sent_at: float = float("-inf")
    sent_len: int = 0


@dataclass
class LiveText:
    interval: float = INTERVAL
    _message: str = ""
    _count: int = 0
    _blocks: dict[int, _Block] = field(default_factory=dict)

    def feed(self, ev: Partial, now: float) -> list[dict[str, Any]]:
        """The `partial` payloads to publish for this event (often none)."""
        if ev.kind == "message_start":
            self._count += 1
            self._message = ev.message_id or f"m{self._count}"
            self._blocks = {}
            return []
        if ev.kind not in ("text", "thinking") or not ev.text:
            return []
        block = self._blocks.setdefault(ev.index, _Block(ev.kind))
        if len(block.text) < MAX_CHARS:
            block.text = (block.text + ev.text)[:MAX_CHARS]
        if now - block.sent_at < self.interval:
            return []
        block.sent_at = now
        block.sent_len = len(block.text)
        return [
            {
                "block": f"{self._message or 'm0'}:{ev.index}",
                "part": block.kind,
                "text": block.text,
            }
        ]
