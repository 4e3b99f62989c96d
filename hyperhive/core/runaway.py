"""The runaway-loop guard: counts messages per sender and per pair of agents over a sliding
minute, independent of money. Pure (no I/O): the budgets feature feeds it `message_sent`
events and trips the breaker when `observe` names a limit.

Invariants: only agent mail counts (the operator and `system` never trip it); a broadcast
counts once for its sender (`count_sender=False` for its other copies) and once per pair;
a limit of 0 is off; a count is over
the limit when it exceeds it (N allowed, N+1 trips); `forget(agent)` restarts the agent's
counts (after the operator resumed it).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

WINDOW = 60.0


@dataclass(frozen=True)
class Runaway:
    key: str  # runaway_messages_per_minute | runaway_exchanges_per_minute
    reason: str
    limit: int


class RunawayGuard:
    def __init__(self) -> None:
        self._sent: dict[str, deque[float]] = {}
        self._pairs: dict[tuple[str, str], deque[float]] = {}
        self._last: dict[tuple[str, str], float] = {}  # (from, to) -> last message at

    @staticmethod
    def _count(q: deque[float], now: float) -> int:
        while q and q[0] <= now - WINDOW:
            q.popleft()
        return len(q)

    def observe(
        self,
        sender: str,
        to: str,
        now: float,
        per_sender: int,
        per_pair: int,
        count_sender: bool = True,
    ) -> Runaway | None:
        """One message `sender` → `to` at `now`; the limit it broke, if any."""
        self._last[(sender, to)] = now
        q = self._sent.setdefault(sender, deque())
        if count_sender:
            q.append(now)
        n = self._count(q, now)
        if per_sender and count_sender and n > per_sender:
            return Runaway(
                "runaway_messages_per_minute",
                f"runaway: {sender} sent {n} messages in a minute (limit {per_sender})",
                per_sender,
            )
        pair = (sender, to) if sender < to else (to, sender)
        p = self._pairs.setdefault(pair, deque())
        p.append(now)
        m = self._count(p, now)
        if per_pair and m > per_pair and self._both_ways(pair, now):
            return Runaway(
                "runaway_exchanges_per_minute",
                f"runaway: {pair[0]} and {pair[1]} exchanged {m} messages in a minute"
                f" (limit {per_pair})",
                per_pair,
            )
        return None

    def _both_ways(self, pair: tuple[str, str], now: float) -> bool:
        """A ping-pong needs mail in both directions within the window."""
        since = now - WINDOW
        return (
            self._last.get((pair[0], pair[1]), since) > since
            and self._last.get((pair[1], pair[0]), since) > since
        )

    def forget(self, agent: str) -> None:
        self._sent.pop(agent, None)
        for pair in [p for p in self._pairs if agent in p]:
            del self._pairs[pair]
        for d in [d for d in self._last if agent in d]:
            del self._last[d]
