"""The pure helpers `/api/state` is built from, one by one (no hive, no I/O)."""

from __future__ import annotations

import json

from hyperhive.clock import iso
from hyperhive.core.records import Message
from hyperhive.web.dashboard import views
from hyperhive.wire.approvals import ApprovalRow
from hyperhive.wire.followups import QuestionRow
from hyperhive.wire.host import AgentStatusRow
from hyperhive.wire.lifecycle import TombstoneView

NOW = 1_800_000_000.0


def test_countdown_format_collapses_by_size() -> None:
    assert views.fmt_countdown(0) == "0s"
    assert views.fmt_countdown(-5) == "0s"
    assert views.fmt_countdown(42.9) == "42s"
    assert views.fmt_countdown(60) == "1m 00s"
    assert views.fmt_countdown(245) == "4m 05s"
    assert views.fmt_countdown(3599) == "59m 59s"
    assert views.fmt_countdown(3600) == "1h 00m"
    assert views.fmt_countdown(2 * 3600 + 7 * 60 + 59) == "2h 07m"


def test_age_and_size_formats() -> None:
    assert views.fmt_age(2) == "just now"
    assert views.fmt_age(12) == "12s ago"
    assert views.fmt_age(300) == "5m ago"
    assert views.fmt_age(3 * 3600 + 5) == "3h ago"
    assert views.fmt_age(4 * 86400) == "4d ago"
    assert views.fmt_bytes(512) == "512 B"
    assert views.fmt_bytes(12_800) == "12.5 KiB"
    assert views.fmt_bytes(5 * 1024**3) == "5.0 GiB"


def _row(name: str, **kw: object) -> AgentStatusRow:
    base: dict[str, object] = {"name": name, "running": True, "kind": "agent"}
    return AgentStatusRow.model_validate({**base, **kw})


def test_container_views_badges_pending_and_any_stale() -> None:
    rows = [
        _row("zed", running=False, failed=True, status_text="stale text", state="crashed"),
        _row(
            "alice",
            transient="restarting",
            deployed_sha="0123456789abcdef0123",
            status_text="writing tests",
            unread=3,
            active_model="haiku",
        ),
        _row("boss", kind="manager", state="in_turn", state_note="running Bash"),
    ]
    out, any_stale = views.build_container_views(rows)
    assert [v.name for v in out] == ["boss", "alice", "zed"]  # manager first, then by name
    assert any_stale is False
    boss, alice, zed = out
    assert boss.role == "manager" and alice.role == "agent"
    assert alice.pending == "restarting" and alice.pending_label == "restarting…"
    assert alice.deployed_sha == "0123456789ab"
    assert alice.status_text == "writing tests" and alice.unread == 3
    assert alice.url == "/agent/alice/"
    assert zed.failed and not zed.running and zed.status_text is None  # not running: no text
    assert boss.pending is None and boss.unread == 0
    assert (zed.state, zed.state_label, zed.state_tone) == ("crashed", "crashed", "bad")
    assert (boss.state_label, boss.state_tone, boss.state_note) == ("in turn", "ok", "running Bash")
    assert alice.state == "unknown"  # a row without a state (an old core): never guessed idle
    _, stale = views.build_container_views([_row("a"), _row("b", needs_update=True)])
    assert stale is True
    assert views.build_container_views([]) == ([], False)


def test_transient_views_only_for_names_without_a_row() -> None:
    out = views.build_transient_views(
        {"alice": "restarting", "new-one": "spawning", "gone": "destroying"}, ["alice", "boss"]
    )
    assert [(t.name, t.transient, t.label) for t in out] == [
        ("gone", "destroying", "destroying…"),
        ("new-one", "spawning", "spawning…"),
    ]


def _approval(aid: int, **kw: object) -> ApprovalRow:
    base: dict[str, object] = {
        "id": aid,
        "agent": "bob",
        "kind": "spawn",
        "requested_at": iso(NOW - 120),
        "status": "pending",
        "requested_by": "manager",
    }
    return ApprovalRow.model_validate({**base, **kw})


def test_approval_views_pending_only_oldest_first_with_diffs() -> None:
    rows = [
        _approval(7, kind="apply_commit", fetched_sha="f" * 40, commit_ref="abc1234"),
        _approval(3, description="a helper"),
        _approval(5, status="approved"),
    ]
    out = views.build_approval_views(rows, {7: "<div class='hh-diff'>+x</div>"}, NOW)
    assert [a.id for a in out] == [3, 7]
    spawn, commit = out
    assert spawn.kind_label == "sp4wn" and spawn.diff_html is None and spawn.sha is None
    assert spawn.description == "a helper" and spawn.age == "2m ago"
    assert commit.kind_label == "4pply c0mm1t" and commit.sha == "f" * 12
    assert commit.diff_html == "<div class='hh-diff'>+x</div>"


def test_tombstone_views_humanise_size_and_age() -> None:
    out = views.build_tombstone_views(
        [
            TombstoneView(
                name="zed",
                size_bytes=2048,
                modified_at=iso(NOW),
                age_seconds=7200,
                credentials_kept=True,
            ),
            TombstoneView(
                name="amy",
                size_bytes=10,
                modified_at=iso(NOW),
                age_seconds=1,
                credentials_kept=False,
            ),
        ]
    )
    assert [(t.name, t.size, t.age, t.credentials_kept) for t in out] == [
        ("amy", "10 B", "just now", False),
        ("zed", "2.0 KiB", "2h ago", True),
    ]


def _question(qid: int, **kw: object) -> QuestionRow:
    base: dict[str, object] = {
        "id": qid,
        "asker": "manager",
        "question": "which?",
        "asked_at": iso(NOW - 30),
    }
    return QuestionRow.model_validate({**base, **kw})


def test_question_views_inputs_and_countdowns() -> None:
    rows = [
        _question(4, options=["a", "b"], multi=True, deadline_at=iso(NOW + 245)),
        _question(2, options=["yes", "no"]),
        _question(3, deadline_at=iso(NOW - 5)),  # overdue, not yet expired by the scheduler
        _question(1, answered_at=iso(NOW), answer="x"),  # resolved: not shown
    ]
    out = views.build_question_views(rows, NOW)
    assert [q.id for q in out] == [2, 3, 4]
    single, overdue, multi = out
    assert single.input_type == "radio" and single.countdown is None
    assert single.remaining_seconds is None and single.age == "30s ago"
    assert overdue.countdown == "⏳ 0s" and overdue.remaining_seconds == 0
    assert multi.input_type == "checkbox" and multi.countdown == "⏳ 4m 05s"
    assert multi.deadline_ts == NOW + 245
    # multi without options is free text: nothing to check
    (free,) = views.build_question_views([_question(9, multi=True)], NOW)
    assert free.input_type == "radio" and free.options == []


def test_inbox_views_newest_first_with_event_previews() -> None:
    msgs = [
        Message(1, "alice", "operator", "first", "message", iso(NOW), iso(NOW)),
        Message(
            2,
            "system",
            "operator",
            json.dumps({"event": "spawned", "agent": "bob", "ok": True}),
            "event",
            iso(NOW),
        ),
        Message(3, "bob", "operator", "line one\n  line two " + "x" * 600, "message", iso(NOW)),
    ]
    out = views.build_inbox_views(msgs)
    assert [m.id for m in out] == [3, 2, 1]
    long, event, first = out
    assert (
        long.unread and long.preview.startswith("line one line two x") and len(long.preview) == 400
    )
    assert long.body.startswith("line one\n")
    assert event.preview == "spawned · bob · ok true"  # plain words, not JSON
    assert first.unread is False
