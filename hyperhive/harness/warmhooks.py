"""What the harness does with its warm `claude` process's news, and its default permission
gate.

- `WarmHooks`: a process start (`claude_start` event: pid, warm), its exit (`claude_exit`:
  code, why = closed | crashed; a crash also gets a note saying the next wake starts cold) and
  lines that arrive between turns (a background shell's completion turn: published like a
  turn's lines) go on the agent's event bus, for its page.
- `RefuseUnlisted`: the gate the harness uses until an operator gate is plugged in. The CLI
  asks (`can_use_tool`) only about a tool its allow/deny lists leave undecided; in `-p` mode
  without a permission prompt tool it refuses such a tool, so refusing here keeps exactly the
  behaviour of the allow/deny lists (an empty `allowed_tools` of an extra MCP server still
  means every call is refused).
"""

from __future__ import annotations

from collections.abc import Callable

from hyperhive.harness.driver import Launch, TurnDriver
from hyperhive.harness.events import EventBus
from hyperhive.harness.permgate import Deny, PermissionAsk, PermissionDecision
from hyperhive.harness.streamevents import Event, StreamLine

QUIET_SUBTYPES = frozenset({"thinking_tokens"})


class RefuseUnlisted:
    """Deny every tool the CLI asks about, in the CLI's own words."""

    async def decide(self, ask: PermissionAsk) -> PermissionDecision:
        return Deny(
            f"Claude requested permissions to use {ask.tool_name}, but you haven't granted it yet."
        )


class WarmHooks:
    def __init__(self, bus: EventBus, publish_event: Callable[[Event], object]) -> None:
        self.bus = bus
        self.publish_event = publish_event

    def on_start(self, pid: int, warm: bool) -> None:
        self.bus.publish("claude_start", pid=pid, warm=warm)

    def on_exit(self, code: int | None, why: str) -> None:
        bus = self.bus
        bus.publish("claude_exit", code=code, why=why)
        if why == "crashed":
            bus.publish(
                "note",
                text=f"claude exited on its own (code {code}); the next wake starts it afresh",
            )

    def on_stray(self, line: StreamLine) -> None:
        raw, events = line
        if raw.get("subtype") in QUIET_SUBTYPES:
            return
        for ev in events:
            self.publish_event(ev)


def harness_driver(
    bus: EventBus,
    warm_seconds: float,
    launch: Callable[[], Launch],
    publish_event: Callable[[Event], object],
) -> TurnDriver:
    """The harness's turn driver: its news on `bus`, the default gate `RefuseUnlisted`."""
    hooks = WarmHooks(bus, publish_event)
    return TurnDriver(
        warm_seconds,
        launch,
        gate=RefuseUnlisted(),
        on_stray=hooks.on_stray,
        on_start=hooks.on_start,
        on_exit=hooks.on_exit,
    )
