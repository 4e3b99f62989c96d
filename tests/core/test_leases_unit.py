"""The lease state machine (`core/leases.py` over `Broker`), driven directly with a fake
monotonic clock: every leased message is settled exactly once and the broker's unread index
and leased set stay consistent with the store."""

from __future__ import annotations

from hyperhive.core.hive import Hive
from hyperhive.core.leases import ConnectionLeases
from hyperhive.names import OPERATOR


class FakeTime:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


async def _fill(hive: Hive, n: int) -> list[int]:
    ids: list[int] = []
    for i in range(n):
        ids.extend(m.id for m in await hive.broker.send(OPERATOR, "manager", f"m{i}"))
    return ids


async def _undelivered(hive: Hive) -> list[int]:
    rows, _ = await hive.broker.store.undelivered("manager", 100)
    return [r.id for r in rows]


async def test_partial_ack_and_release_split_leases(hive: Hive) -> None:
    ids = await _fill(hive, 5)
    book = ConnectionLeases(hive.broker, 60, now=FakeTime())
    book.add(await hive.broker.recv("manager", 0, 3))
    book.add(await hive.broker.recv("manager", 0, 3))
    assert book.held == 5 and book.ids() == ids
    assert hive.broker._inbox("manager").leased == set(ids)

    assert book.ack([ids[1], ids[3], 12345]) == [ids[1], ids[3]]
    assert book.release([ids[0], ids[3]]) == [ids[0]]  # ids[3] is no longer held
    assert book.held == 2 and book.ids() == [ids[2], ids[4]]
    await hive.broker.drain()
    assert await _undelivered(hive) == [ids[0], ids[2], ids[4]]
    assert hive.broker._inbox("manager").leased == {ids[2], ids[4]}

    again = await hive.broker.recv("manager", 0, 8)
    assert again.ids == [ids[0]]  # only the released one is offered; the rest is held
    hive.broker.release(again)
    book.close()
    assert book.held == 0
    assert hive.broker._inbox("manager").leased == set()
    back = await hive.broker.recv("manager", 0, 8)
    assert back.ids == [ids[0], ids[2], ids[4]]  # in id order
    await hive.broker.ack(back)
    assert await _undelivered(hive) == []
    assert await hive.broker.unread("manager") == 0


async def test_silence_expires_and_requests_renew(hive: Hive) -> None:
    ids = await _fill(hive, 2)
    now = FakeTime()
    book = ConnectionLeases(hive.broker, 10, now=now)
    book.add(await hive.broker.recv("manager", 0, 8))
    now.t += 9
    assert book.expire_due() == []
    book.touch()  # a request on the connection
    now.t += 9
    assert book.expire_due() == []  # 18 s after the lease, 9 s after the last request
    assert await hive.broker.unread("manager") == 0  # held: not counted as waiting
    now.t += 1
    assert book.expire_due() == ids
    assert book.held == 0
    assert await hive.broker.unread("manager") == 2
    assert book.ack() == []  # a late ack finds nothing
    again = await hive.broker.recv("manager", 0, 8)
    assert again.ids == ids


async def test_add_after_close_releases_at_once(hive: Hive) -> None:
    ids = await _fill(hive, 1)
    book = ConnectionLeases(hive.broker, 10, now=FakeTime())
    lease = await hive.broker.recv("manager", 0, 8)
    book.close()
    book.close()  # idempotent
    book.add(lease)  # the reply's write raced the connection's end
    assert book.held == 0
    assert (await hive.broker.recv("manager", 0, 8)).ids == ids


async def test_ack_then_release_of_the_same_ids_settles_once(hive: Hive) -> None:
    ids = await _fill(hive, 2)
    book = ConnectionLeases(hive.broker, 10, now=FakeTime())
    book.add(await hive.broker.recv("manager", 0, 8))
    assert book.ack() == ids
    assert book.release() == []
    book.close()
    await hive.broker.drain()
    assert await _undelivered(hive) == []
    assert (await hive.broker.recv("manager", 0, 8)).ids == []
