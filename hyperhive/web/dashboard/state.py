"""`/api/state`: gather what the page shows from the hive, then shape it with `views`.

Invariant: this module only reads (no state changes) and tolerates a hive without some
features (no lifecycle, no approvals, ...): their sections are then empty.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hyperhive.core.attention import gather as gather_attention
from hyperhive.core.status import status_rows
from hyperhive.core.tombstones import list_tombstones
from hyperhive.names import OPERATOR
from hyperhive.web.dashboard import views
from hyperhive.web.dashboard.permissions import permission_state

if TYPE_CHECKING:
    from hyperhive.core.hive import Hive

INBOX_LIMIT = 50


async def build_state(hive: Hive) -> dict[str, Any]:
    seq = hive.hub.last_seq  # the state reflects at least every event up to here
    now = hive.clock.now()
    rows = await status_rows(hive)
    containers, any_stale = views.build_container_views(rows)
    lifecycle = hive.lifecycle if hive.runs("lifecycle") else None
    transients = views.build_transient_views(
        dict(lifecycle.transients) if lifecycle is not None else {}, (r.name for r in rows)
    )
    approvals_feature = hive.approvals if hive.runs("approvals") else None
    approvals: list[views.ApprovalView] = []
    if approvals_feature is not None:
        pending = await approvals_feature.pending()
        diffs = {a.id: await approvals_feature.diff_html(a.id) for a in pending}
        approvals = views.build_approval_views(pending, diffs, now)
    questions_feature = hive.questions if hive.runs("questions") else None
    questions = (
        views.build_question_views(await questions_feature.pending(), now)
        if questions_feature is not None
        else []
    )
    tombstones = views.build_tombstone_views(await list_tombstones(hive))
    inbox = views.build_inbox_views(await hive.broker.recent(OPERATOR, INBOX_LIMIT))
    attention = await gather_attention(hive)  # after the rows: they refresh the agent states
    return {
        "ok": True,
        "epoch": hive.hub.epoch,
        "seq": seq,
        "now": now,
        "any_stale": any_stale,
        "containers": [v.model_dump() for v in containers],
        "transients": [v.model_dump() for v in transients],
        "tombstones": [v.model_dump() for v in tombstones],
        "questions": [v.model_dump() for v in questions],
        "inbox": [v.model_dump() for v in inbox],
        "inbox_unread": await hive.broker.unread(OPERATOR),
        "approvals": [v.model_dump() for v in approvals],
        "attention": [i.model_dump() for i in attention],
        "permissions": await permission_state(hive),
    }
