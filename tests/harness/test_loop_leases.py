"""The harness's side of recv leases, against a real core: the woken message is renewed while
its turn runs and acknowledged (or released) once it ended."""

from __future__ import annotations

from pathlib import Path

from hyperhive.client.agent import NO_RETRY
from hyperhive.core.hive import Hive
from hyperhive.harness.loop import Harness
from hyperhive.harness.options import HarnessOptions
from hyperhive.names import OPERATOR
from tests.support.waiting import eventually


def _harness(hive: Hive, tmp: Path) -> Harness:
    h = Harness(HarnessOptions(socket=hive.paths.agent_sock("manager"), state_dir=tmp))
    h.client.retry = NO_RETRY
    return h


async def test_turn_renews_the_lease_then_acks(hive: Hive, short_tmp: Path) -> None:
    [msg] = await hive.broker.send(OPERATOR, "manager", "work")
    h = _harness(hive, short_tmp)
    server = hive._sockets["manager"]
    renewals = 0
    renew = h.client.renew

    async def counting() -> dict[str, object]:
        nonlocal renewals
        answer = await renew()
        renewals += 1
        assert answer["held"] == 1
        return answer

    h.client.renew = counting  # type: ignore[method-assign]
    try:
        got = await h.client.recv(max=1)
        assert [m["id"] for m in got["messages"]] == [msg.id]
        async with h._lease_kept(0.2):  # renews every 0.05 s while the "turn" runs
            await eventually(lambda: renewals >= 3, 10, "three renewals")
        n = renewals
        assert server.leases_held() == 1
        await h._settle(msg.id, handled=True)
        assert server.leases_held() == 0
        # the renewer stopped cleanly: nothing more, and the shared connection is in step
        assert (await h.client.call("whoami"))["name"] == "manager"
        assert renewals == n
    finally:
        await h.client.aclose()
    await hive.broker.drain()
    [row] = [r for r in await hive.broker.recent("manager", 5) if r.id == msg.id]
    assert row.delivered_at is not None


async def test_an_unhandled_message_is_released(hive: Hive, short_tmp: Path) -> None:
    [msg] = await hive.broker.send(OPERATOR, "manager", "not now")
    h = _harness(hive, short_tmp)
    try:
        await h.client.recv(max=1)
        await h._settle(msg.id, handled=False)
        again = await h.client.recv(max=1)  # (acknowledges nothing: the release emptied it)
        assert [m["id"] for m in again["messages"]] == [msg.id]
        assert msg.id not in h._handled
    finally:
        await h.client.aclose()


async def test_a_message_already_handled_is_acked_without_a_turn(
    hive: Hive, short_tmp: Path
) -> None:
    """After a reconnect the core offers a handled message again (its ack found no lease):
    the harness acknowledges it at once instead of taking a second turn."""
    [msg] = await hive.broker.send(OPERATOR, "manager", "done before")
    h = _harness(hive, short_tmp)

    async def no_turn(m: dict[str, object], remaining: int) -> bool:
        raise AssertionError("a second turn for a handled message")

    h.take_turn = no_turn  # type: ignore[method-assign]
    h._handled.append(msg.id)
    try:
        async with h.bus:
            await h._wake(await h.client.recv(max=1))
        assert hive._sockets["manager"].leases_held() == 0
        assert (await h.client.recv())["messages"] == []
    finally:
        await h.client.aclose()
