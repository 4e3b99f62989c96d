"""The dashboard's tool permission section: views of pending requests (for `/api/state`)
and the routes that decide one (`/api/permissions/{id}/allow|always|deny`).

Invariants: the views only read; every route calls `PermissionsFeature.decide`, as the host
socket and the CLI do, so a click racing another operator or the expiry is a `conflict`; the
input is rendered readably (one field per line, long strings cut for the page) and always
as text, never markup.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request

from hyperhive.clock import parse_iso
from hyperhive.core.permissions import PermissionsFeature
from hyperhive.web.dashboard.views import _age_since, fmt_countdown
from hyperhive.wire.permissions import NOTE_MAX, PermissionRow

if TYPE_CHECKING:
    from hyperhive.core.hive import Hive

FIELD_SHOWN = 2000  # characters of one input field on the page


class PermissionField(BaseModel):
    model_config = ConfigDict(frozen=True)
    key: str
    text: str
    multiline: bool


class PermissionView(BaseModel):
    model_config = ConfigDict(frozen=True)
    id: int
    agent: str
    tool: str
    summary: str  # `Bash(git push origin main)`: what it wants to do, in one line
    fields: list[PermissionField]
    reason: str | None
    rule: str | None
    asked_at: str
    age: str
    deadline_at: str
    deadline_ts: float
    countdown: str


class PermissionNoteBody(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    note: str = Field(default="", max_length=NOTE_MAX)


def _text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, indent=1)
    return text if len(text) <= FIELD_SHOWN else text[: FIELD_SHOWN - 1] + "…"


def summary(row: PermissionRow) -> str:
    for key in ("command", "file_path", "notebook_path", "path", "url"):
        value = row.input.get(key)
        if isinstance(value, str) and value:
            line = " ".join(value.split())
            return f"{row.tool}({line[:200]}{'…' if len(line) > 200 else ''})"
    return row.tool


def build_permission_views(rows: Iterable[PermissionRow], now: float) -> list[PermissionView]:
    out = []
    for row in sorted(rows, key=lambda r: r.id):
        if not row.pending:
            continue
        deadline = parse_iso(row.deadline_at)
        fields = [
            PermissionField(key=str(k), text=(t := _text(v)), multiline="\n" in t)
            for k, v in row.input.items()
        ]
        out.append(
            PermissionView(
                id=row.id,
                agent=row.agent,
                tool=row.tool,
                summary=summary(row),
                fields=fields,
                reason=row.reason,
                rule=row.rule,
                asked_at=row.asked_at,
                age=_age_since(row.asked_at, now),
                deadline_at=row.deadline_at,
                deadline_ts=deadline,
                countdown=f"⏳ {fmt_countdown(max(0.0, deadline - now))}",
            )
        )
    return out


async def permission_state(hive: Hive) -> list[dict[str, Any]]:
    """The section's rows for `/api/state` (none when the hive runs without the feature)."""
    if not hive.runs("permissions"):
        return []
    feature = hive.feature("permissions")
    assert isinstance(feature, PermissionsFeature)
    views = build_permission_views(await feature.pending(), hive.clock.now())
    return [v.model_dump() for v in views]


DECISIONS: dict[str, str] = {
    "allow": "Allow a pending tool permission request once.",
    "always": "Allow a pending tool permission request and keep its narrowest rule for that"
    " agent (the same use is then allowed without asking).",
    "deny": "Deny a pending tool permission request; the note is what the model sees.",
}


async def decide(
    hive: Hive, pid: int, decision: str, request: Request, body: BaseModel
) -> dict[str, Any]:
    assert isinstance(body, PermissionNoteBody)
    feature = hive.feature("permissions")  # FeatureMissing when the hive runs without it
    assert isinstance(feature, PermissionsFeature)
    row = await feature.decide(pid, decision, body.note or None)  # type: ignore[arg-type]
    what = f"#{row.id} {row.status.value}: {row.agent} may{'' if row.allowed else ' not'} use {summary(row)}"
    if row.kept_rule:
        what += f" (kept: {row.kept_rule})"
    return {"message": what, "permission": row.model_dump(mode="json", exclude_none=True)}
