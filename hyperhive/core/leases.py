"""The recv leases one agent-socket connection holds until its client acknowledges them.

A `recv` answer's messages stay leased to the connection that asked (the broker keeps them
out of every other recv) until the client settles them:
- `ack` (explicit, by ids or everything held) or the connection's next `recv` (implicit,
  everything held: clients that never send `ack` keep working) → marked delivered;
- `release` (explicit), the connection closing or dying, or the connection staying silent for
  `lease_seconds` → unread again, offered to the next recv.

Invariants:
- Every lease added here is settled exactly once, through the broker (`ack_soon` or
  `release`), by exactly one of the paths above; `close` settles whatever is left.
- Any request on the connection renews the whole connection's leases (`touch`): the timeout
  catches a client that is stuck or gone silent, not one that is slow. A client busy with a
  batch for longer (a harness in a turn) renews with the cheap `renew` verb.
- At most one timer per connection, armed only while something is held.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection

from hyperhive.core.broker import Broker, Lease

logger = logging.getLogger(__name__)


class ConnectionLeases:
    def __init__(
        self,
        broker: Broker,
        lease_seconds: float,
        *,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.broker = broker
        self.lease_seconds = lease_seconds
        self._now = now
        self._leases: list[Lease] = []
        self._last = now()
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False

    @property
    def held(self) -> int:
        """How many messages this connection holds unacknowledged."""
        return sum(len(lease.messages) for lease in self._leases)

    def ids(self) -> list[int]:
        return [i for lease in self._leases for i in lease.ids]

    def touch(self) -> None:
        """The client is alive (it sent a request): renew every lease it holds."""
        self._last = self._now()

    def add(self, lease: Lease) -> None:
        """The reply carrying `lease` was written: the connection holds it until settled."""
        if not lease.messages:
            return
        if self._closed:  # raced with the connection going away
            self.broker.release(lease, "connection closed")
            return
        self._last = self._now()  # a lease's clock starts when its reply was written
        self._leases.append(lease)
        self._arm()

    def _take(self, ids: Collection[int] | None) -> list[Lease]:
        """Remove and return the leases (split as needed) holding `ids` (None: all)."""
        if ids is None:
            out, self._leases = self._leases, []
            return out
        wanted = set(ids)
        out = []
        keep = []
        for lease in self._leases:
            mine = wanted.intersection(lease.ids)
            if not mine:
                keep.append(lease)
            elif len(mine) == len(lease.messages):
                out.append(lease)
            else:
                out.append(lease.split(mine))
                keep.append(lease)
        self._leases = keep
        return out

    def ack(self, ids: Collection[int] | None = None) -> list[int]:
        """Mark `ids` (None: everything held) delivered; returns the ids this connection held."""
        done = []
        for lease in self._take(ids):
            done.extend(lease.ids)
            self.broker.ack_soon(lease)
        self._disarm_if_empty()
        return sorted(done)

    def release(
        self, ids: Collection[int] | None = None, why: str = "released by client"
    ) -> list[int]:
        """Put `ids` (None: everything held) back unread; returns the ids this connection held."""
        done = []
        for lease in self._take(ids):
            done.extend(lease.ids)
            self.broker.release(lease, why)
        self._disarm_if_empty()
        return sorted(done)

    def expire_due(self) -> list[int]:
        """Release everything if the connection has been silent for `lease_seconds`."""
        if not self._leases or self._now() - self._last < self.lease_seconds:
            return []
        agent = self._leases[0].recipient
        ids = self.release(None, f"lease timed out after {self.lease_seconds:g} s of silence")
        logger.warning(
            "connection silent for %g s: %d leased message(s) re-queued",
            self.lease_seconds,
            len(ids),
            extra={"action": "lease_expired", "agent": agent},
        )
        return ids

    def close(self) -> None:
        """The connection is gone: everything still held goes back. Idempotent."""
        self._closed = True
        self.release(None, "connection closed holding a lease")
        self._disarm()

    # -- the one timer ------------------------------------------------------------------------

    def _arm(self) -> None:
        if self._timer is not None or not self._leases:
            return
        delay = max(self._last + self.lease_seconds - self._now(), 0.0)
        self._timer = asyncio.get_running_loop().call_later(delay, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self.expire_due()
        self._arm()  # renewed meanwhile: wait for the new deadline

    def _disarm_if_empty(self) -> None:
        if not self._leases:
            self._disarm()

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
