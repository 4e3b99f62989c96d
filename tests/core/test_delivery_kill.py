"""At-least-once for real: recv clients SIGKILLed at random points under load (a sender
busy meanwhile, clients killed mid-request, mid-batch, and after reading a reply but before
acknowledging it) lose nothing; duplicates are counted and printed. A real daemon process."""

from __future__ import annotations

import asyncio
import random
import signal
import sys
import time
from collections import Counter
from pathlib import Path

from hyperhive.client.agent import NO_RETRY, AgentClient
from tests.support.daemon import DaemonProcess

CLIENT = Path(__file__).with_name("delivery_client.py")
MESSAGES = 600
# the sender floods on purpose: the runaway guard (docs/operations.md) would pause it
FLOOD_CONFIG = """[defaults]
runtime = "external"
[budgets]
runaway_messages_per_minute = 0
runaway_exchanges_per_minute = 0
"""
MIN_KILLS = 16
# Hang guards, not timings: the kill rounds end once MIN_KILLS clients were killed and every
# message sent (seconds on an idle machine), the drain once every id came back; these bound
# them on a loaded one (pytest's timeout is 180 s for the whole test).
BUDGET = 60.0
DRAIN_GUARD = 60.0


class Tally:
    def __init__(self) -> None:
        self.seen: Counter[int] = Counter()  # every id a client read, with repeats
        self.done: set[int] = set()  # ids a client read and acknowledged (handled)
        self.held: list[int] = []  # read but never acknowledged by a killed `hold` client
        self.kills = 0
        self.hold_kills = 0
        self.started = 0
        self.killed = asyncio.Event()  # set at every kill (paces the sender)
        self.killing = True  # False once the kill rounds are over (the sender stops pacing)


async def _one_client(sock: str, rnd: random.Random, tally: Tally) -> None:
    hold = tally.started % 3 == 0  # one client in three: killed after reading, before acking
    tally.started += 1
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(CLIENT),
        sock,
        "hold" if hold else "run",
        str(rnd.randrange(1 << 30)),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    got: list[int] = []

    def note(line: str) -> None:
        words = line.split()
        if words[:1] == ["got"]:
            got.extend(int(w) for w in words[1:])
        elif words[:1] == ["done"]:
            tally.done.update(int(w) for w in words[1:])

    async def read_until_holding() -> None:
        assert proc.stdout is not None
        while line := await proc.stdout.readline():
            if line.strip() == b"holding":
                return
            note(line.decode())

    if hold:  # killed after reading a reply, before acknowledging it
        try:
            await asyncio.wait_for(read_until_holding(), 3)
        except TimeoutError:
            pass  # the inbox stayed empty: a plain kill then
        else:
            tally.held.extend(got)  # its one batch
            tally.hold_kills += 1
    else:  # killed at a random point: before connecting, parked, mid-batch, mid-ack
        reader = asyncio.create_task(read_until_holding())
        await asyncio.wait({reader}, timeout=rnd.uniform(0.0, 0.3))
        reader.cancel()
    if hold:
        proc.send_signal(signal.SIGSTOP)  # the stop-then-kill
    proc.send_signal(signal.SIGKILL)
    rest, _ = await proc.communicate()
    for line in rest.decode().splitlines():  # what it printed before it died
        note(line)
    tally.seen.update(got)
    tally.kills += 1
    tally.killed.set()


async def test_recv_clients_killed_at_random_lose_nothing(short_tmp: Path) -> None:
    t0 = time.monotonic()
    daemon = DaemonProcess(short_tmp / "h", config=FLOOD_CONFIG).start()
    t_up = time.monotonic() - t0
    sock = str(daemon.paths.agent_sock("manager"))
    rnd = random.Random()
    seed = rnd.randrange(1 << 30)
    rnd.seed(seed)
    tally = Tally()
    sent: list[int] = []
    try:

        async def sender() -> None:
            """Sends all along the kill rounds: a chunk, then waits for the next kill."""
            chunk = -(-MESSAGES // MIN_KILLS)
            async with AgentClient(sock, retry=NO_RETRY) as c:
                for i in range(MESSAGES):
                    sent.extend((await c.call("send", to="manager", body=f"m{i}"))["ids"])
                    if i % chunk == chunk - 1:
                        tally.killed.clear()
                        if tally.killing:
                            await tally.killed.wait()

        async def killer() -> None:
            deadline = time.monotonic() + BUDGET
            while time.monotonic() < deadline and (tally.kills < MIN_KILLS or len(sent) < MESSAGES):
                await _one_client(sock, rnd, tally)
            tally.killing = False
            tally.killed.set()

        send_task = asyncio.create_task(sender())
        await asyncio.gather(killer(), killer(), send_task)
        t_kills = time.monotonic() - t0

        # the survivor drains: every sent id must come (again, if it was never acknowledged)
        drained: Counter[int] = Counter()
        async with AgentClient(sock, retry=NO_RETRY) as c:
            deadline = time.monotonic() + DRAIN_GUARD
            while time.monotonic() < deadline:
                got = await c.recv(wait_seconds=0.5, max=32)
                drained.update(m["id"] for m in got["messages"])
                if not got["messages"] and set(sent) <= tally.done | set(drained):
                    break
            await c.ack()  # (its recvs acknowledged all but the last, empty, batch)
        t_drain = time.monotonic() - t0
    finally:
        daemon.stop()

    seen = tally.seen + drained
    handled = tally.done | set(drained)
    lost = sorted(set(sent) - handled)  # never acknowledged by a client that lived to do it
    duplicates = sum(n - 1 for n in seen.values() if n > 1)
    print(
        f"\n[kill -9 recv clients] seed {seed}: {tally.kills} clients killed"
        f" ({tally.hold_kills} after reading, before acking); sent {len(sent)},"
        f" handled {len(handled)}, lost {len(lost)}, duplicates {duplicates}"
        f" (daemon up {t_up:.1f} s, kills done {t_kills:.1f} s, drained {t_drain:.1f} s)"
    )
    assert len(sent) == MESSAGES
    assert tally.kills >= MIN_KILLS // 2 and tally.hold_kills >= 1
    assert lost == []
    # what a killed client read but never acknowledged was offered again
    assert all(seen[i] >= 2 for i in tally.held)
