"""The runaway guard alone: per-sender and ping-pong counts over a sliding minute."""

from __future__ import annotations

from hyperhive.core.runaway import RunawayGuard


def test_more_than_n_messages_a_minute_from_one_sender() -> None:
    g = RunawayGuard()
    for i in range(3):
        assert g.observe("alice", f"b{i}", 100.0 + i, 3, 0) is None
    hit = g.observe("alice", "b9", 103.0, 3, 0)
    assert hit is not None and hit.key == "runaway_messages_per_minute" and hit.limit == 3


def test_a_broadcast_counts_once_for_its_sender() -> None:
    g = RunawayGuard()
    for i in range(3):
        for n, to in enumerate(("b", "c", "d")):
            assert g.observe("alice", to, float(i), 3, 0, count_sender=n == 0) is None
    assert g.observe("alice", "b", 4.0, 3, 0) is not None


def test_the_window_slides() -> None:
    g = RunawayGuard()
    for i in range(3):
        assert g.observe("alice", "bob", float(i), 3, 0) is None
    assert g.observe("alice", "bob", 61.0, 3, 0) is None  # the first two fell out


def test_ping_pong_needs_both_directions() -> None:
    g = RunawayGuard()
    hits = [
        g.observe(a, b, float(i), 0, 4)
        for i, (a, b) in enumerate([("alice", "bob"), ("bob", "alice")] * 3)
    ]
    assert hits[:4] == [None] * 4
    assert hits[4] is not None and hits[4].key == "runaway_exchanges_per_minute"


def test_one_way_flood_is_not_a_ping_pong() -> None:
    g = RunawayGuard()
    assert all(g.observe("alice", "bob", float(i), 0, 4) is None for i in range(10))


def test_forget_restarts_the_counts_and_zero_is_off() -> None:
    g = RunawayGuard()
    for i in range(3):
        g.observe("alice", "bob", float(i), 3, 0)
    g.forget("alice")
    assert g.observe("alice", "bob", 3.0, 3, 0) is None
    assert all(g.observe("carol", "dan", 1.0, 0, 0) is None for _ in range(100))
