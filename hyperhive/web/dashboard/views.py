"""What the dashboard shows, as pure functions of core values (no I/O, no hive).

`/api/state` is these helpers applied to what `state.py` gathers; each one is small enough to
test on its own:

- `build_container_views`: one view per registered agent (state badges, pending action) and
  whether any of them runs an outdated config (`any_stale`);
- `build_transient_views`: actions in flight for names that are not (or no longer) registered,
  e.g. a spawn before its registration or a destroy after it;
- `build_approval_views`: pending approvals, oldest first, each with its highlighted diff;
- `build_tombstone_views`: kept state of destroyed agents, with size and age for people;
- `build_question_views`: pending operator questions with their countdowns;
- `build_inbox_views`: the operator's inbox, newest first.

Invariants: times are epoch seconds passed in (`now`), never read here; every view is a frozen
model whose JSON is what the page reads, so adding a field never breaks the page.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from hyperhive.clock import parse_iso
from hyperhive.core.records import Message
from hyperhive.wire.approvals import ApprovalRow
from hyperhive.wire.followups import QuestionRow
from hyperhive.wire.host import AgentStatusRow
from hyperhive.wire.lifecycle import TombstoneView

PREVIEW_MAX = 400


class _View(BaseModel):
    model_config = ConfigDict(frozen=True)


class ContainerView(_View):
    name: str
    role: str  # manager | agent
    running: bool
    failed: bool
    paused: bool
    needs_login: bool
    needs_update: bool
    pending: str | None  # the transient in flight (restarting, ...) or None
    pending_label: str | None  # "restarting…"
    status_text: str | None
    status_set_at: str | None
    model: str | None
    deployed_sha: str | None
    runtime: str | None
    parent: str | None
    unread: int
    pending_reminders: int
    url: str  # the agent's page, proxied by the core
    state: str  # the one derived state (`AgentState` value)
    state_label: str  # "in turn", "waiting for operator", ...
    state_tone: str  # ok | off | warn | bad: the badge's colour
    state_note: str | None
    state_since: str | None
    budget_used: float | None = None  # the highest fraction of its budget limits (the meter)
    budget_tripped: bool = False
    node: str | None = None  # the node (host) that runs it (docs/multihost.md)
    last_activity: str | None = None  # the latest of its state change and status text
    tokens_today: int | None = None
    cost_today_usd: float | None = None


class TransientView(_View):
    name: str
    transient: str
    label: str


class ApprovalView(_View):
    id: int
    agent: str
    kind: str
    kind_label: str
    requested_by: str
    requested_at: str
    age: str
    description: str
    commit_ref: str
    sha: str | None  # short pinned sha
    diff_html: str | None


class TombstoneItem(_View):
    name: str
    size_bytes: int
    size: str
    modified_at: str
    age: str
    credentials_kept: bool


class QuestionView(_View):
    id: int
    asker: str
    question: str
    options: list[str]
    multi: bool
    input_type: str  # radio | checkbox
    asked_at: str
    age: str
    deadline_at: str | None
    deadline_ts: float | None
    remaining_seconds: float | None
    countdown: str | None  # "⏳ 4m 05s"


class InboxItem(_View):
    id: int
    sender: str
    kind: str
    body: str
    preview: str
    sent_at: str
    unread: bool


# -- formatting --------------------------------------------------------------------------------


def fmt_countdown(seconds: float) -> str:
    """`42s` under a minute, `4m 05s` under an hour, else `2h 07m` (never negative)."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {s % 3600 // 60:02d}m"


def fmt_age(seconds: float) -> str:
    """A coarse age: `just now`, `12s ago`, `5m ago`, `3h ago`, `4d ago`."""
    s = max(0, int(seconds))
    if s < 5:
        return "just now"
    if s < 60:
        return f"{s}s ago"
    if s < 3600:
        return f"{s // 60}m ago"
    if s < 86400:
        return f"{s // 3600}h ago"
    return f"{s // 86400}d ago"


def fmt_bytes(n: int) -> str:
    size = float(max(0, n))
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def pending_label(transient: str) -> str:
    return f"{transient}…"


def _age_since(at: str | None, now: float) -> str:
    if not at:
        return ""
    try:
        return fmt_age(now - parse_iso(at))
    except ValueError:
        return ""


# -- the helpers -------------------------------------------------------------------------------


STATE_LABELS = {
    "in_turn": "in turn",
    "waiting_operator": "waiting for operator",
    "node_lost": "node lost",
}
STATE_TONES = {
    "idle": "ok",
    "in_turn": "ok",
    "compacting": "ok",
    "paused": "warn",
    "waiting_operator": "warn",
    "failed": "bad",
    "crashed": "bad",
    "node_lost": "bad",
}


def state_badge(state: str) -> tuple[str, str]:
    """The label and tone (ok | off | warn | bad) a state is shown with."""
    return STATE_LABELS.get(state, state), STATE_TONES.get(state, "off")


def build_container_views(
    rows: Iterable[AgentStatusRow],
) -> tuple[list[ContainerView], bool]:
    """One view per agent (manager first, then by name) and the any-stale flag."""
    views = [
        ContainerView(
            name=r.name,
            role="manager" if r.kind == "manager" else "agent",
            running=r.running,
            failed=r.failed,
            paused=r.paused,
            needs_login=r.needs_login,
            needs_update=r.needs_update,
            pending=r.transient,
            pending_label=pending_label(r.transient) if r.transient else None,
            status_text=r.status_text if r.running else None,
            status_set_at=r.status_set_at if r.running else None,
            model=r.active_model,
            deployed_sha=r.deployed_sha[:12] if r.deployed_sha else None,
            runtime=r.runtime,
            parent=r.parent,
            unread=r.unread or 0,
            pending_reminders=r.pending_reminders,
            url=f"/agent/{r.name}/",
            state=_state(r),
            state_label=state_badge(_state(r))[0],
            state_tone=state_badge(_state(r))[1],
            state_note=r.state_note,
            state_since=r.state_since,
            budget_used=r.budget_used,
            budget_tripped=bool(r.budget_tripped),
            node=r.node,
            last_activity=_latest(r.state_since, r.status_set_at if r.running else None),
            tokens_today=r.tokens_today,
            cost_today_usd=r.cost_today_usd,
        )
        for r in rows
    ]
    views.sort(key=lambda v: (v.role != "manager", v.name))
    return views, any(v.needs_update for v in views)


def _latest(*stamps: str | None) -> str | None:
    """The latest of some ISO stamps (unparseable ones ignored)."""
    best: tuple[float, str] | None = None
    for at in stamps:
        if not at:
            continue
        try:
            t = parse_iso(at)
        except ValueError:
            continue
        if best is None or t > best[0]:
            best = (t, at)
    return best[1] if best else None


def _state(r: AgentStatusRow) -> str:
    return r.state or ("unknown" if r.running else "stopped")


def build_transient_views(
    transients: Mapping[str, str], known: Iterable[str]
) -> list[TransientView]:
    """Actions in flight for names without a container row (their row shows its own pill)."""
    names = set(known)
    return [
        TransientView(name=n, transient=t, label=pending_label(t))
        for n, t in sorted(transients.items())
        if n not in names
    ]


_KIND_LABELS = {
    "spawn": "sp4wn",
    "init_config": "1n1t c0nf1g",
    "apply_commit": "4pply c0mm1t",
}


def build_approval_views(
    rows: Iterable[ApprovalRow], diffs: Mapping[int, str | None], now: float
) -> list[ApprovalView]:
    """Pending approvals only, oldest first, each with its diff HTML when it applies one."""
    out = [
        ApprovalView(
            id=r.id,
            agent=r.agent,
            kind=r.kind,
            kind_label=_KIND_LABELS.get(r.kind, r.kind),
            requested_by=r.requested_by,
            requested_at=r.requested_at,
            age=_age_since(r.requested_at, now),
            description=r.description,
            commit_ref=r.commit_ref,
            sha=r.fetched_sha[:12] if r.fetched_sha else None,
            diff_html=diffs.get(r.id),
        )
        for r in rows
        if r.pending
    ]
    out.sort(key=lambda v: v.id)
    return out


def build_tombstone_views(tombstones: Iterable[TombstoneView]) -> list[TombstoneItem]:
    return [
        TombstoneItem(
            name=t.name,
            size_bytes=t.size_bytes,
            size=fmt_bytes(t.size_bytes),
            modified_at=t.modified_at,
            age=fmt_age(t.age_seconds),
            credentials_kept=t.credentials_kept,
        )
        for t in sorted(tombstones, key=lambda t: t.name)
    ]


def build_question_views(questions: Iterable[QuestionRow], now: float) -> list[QuestionView]:
    """Open questions, oldest first; `countdown` only for those with a deadline."""
    out: list[QuestionView] = []
    for q in sorted(questions, key=lambda q: q.id):
        if not q.open:
            continue
        deadline = parse_iso(q.deadline_at) if q.deadline_at else None
        remaining = max(0.0, deadline - now) if deadline is not None else None
        out.append(
            QuestionView(
                id=q.id,
                asker=q.asker,
                question=q.question,
                options=list(q.options),
                multi=q.multi,
                input_type="checkbox" if q.multi and q.options else "radio",
                asked_at=q.asked_at,
                age=_age_since(q.asked_at, now),
                deadline_at=q.deadline_at,
                deadline_ts=deadline,
                remaining_seconds=remaining,
                countdown=f"⏳ {fmt_countdown(remaining)}" if remaining is not None else None,
            )
        )
    return out


def event_words(data: dict[str, Any]) -> str:
    """A system event in plain words: `approval resolved · #3 · spawn · bob · approved · note
    fine`, not `[approval_resolved] {"id": 3, ...}`. Empty fields and timestamps are left out."""
    parts = [str(data.get("event", "event")).replace("_", " ")]
    if isinstance(data.get("id"), int):
        parts.append(f"#{data['id']}")
    for key, value in data.items():
        if key in ("event", "id") or key.endswith("_at") or value in (None, "", [], {}):
            continue
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        parts.append(text if key in _BARE_FIELDS else f"{key.replace('_', ' ')} {text}")
    return " · ".join(parts)


_BARE_FIELDS = frozenset({"agent", "kind", "status", "note"})


def _preview(m: Message) -> str:
    body = m.body
    if m.kind == "event":  # system events are JSON: shown in plain words
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if isinstance(data, dict) and "event" in data:
            body = event_words(data)
    line = " ".join(body.split())
    return line if len(line) <= PREVIEW_MAX else line[: PREVIEW_MAX - 1] + "…"


def build_inbox_views(messages: Sequence[Message]) -> list[InboxItem]:
    """The operator's inbox, newest first."""
    return [
        InboxItem(
            id=m.id,
            sender=m.sender,
            kind=m.kind,
            body=m.body,
            preview=_preview(m),
            sent_at=m.sent_at,
            unread=m.delivered_at is None,
        )
        for m in sorted(messages, key=lambda m: m.id, reverse=True)
    ]
