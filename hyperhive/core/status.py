"""Agent status rows (`agent_status`, the dashboard): registry facts plus what features add.

Invariants: `status_text`/`status_set_at` are omitted when unset or when the agent is not
running; optional fields are None (and so omitted on the wire) rather than guessed. `state`
(+ `state_note`, `state_since`) is derived here, once, from the row's own facts plus the
harness's last report (`hyperhive.core.agentstate`), so every surface shows the same state.

A refresh of the whole hive (`status_rows`) reads each store once for all agents (unread
counts, each feature's fields, open questions), not once per agent: with
100 agents on PostgreSQL that was ~1,000 round trips per dashboard refresh. One row is the same
code asked for one name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from hyperhive.core.agentstate import Facts, clip
from hyperhive.core.records import AgentRecord
from hyperhive.wire.host import AgentStatusRow

if TYPE_CHECKING:
    from hyperhive.core.hive import Hive


async def status_row(hive: Hive, name: str) -> AgentStatusRow:
    """`name`'s row (`NotFound` if it is not registered)."""
    return (await status_rows(hive, [name]))[0]


async def status_rows(hive: Hive, names: Sequence[str] | None = None) -> list[AgentStatusRow]:
    """The rows of `names` (default: every registered agent), in that order."""
    recs = [hive.registry.require(n) for n in (hive.registry.names() if names is None else names)]
    pushed = {r.name: row for r in recs if (row := _from_its_node(hive, r.name)) is not None}
    local = [r.name for r in recs if r.name not in pushed]  # another live node's rows are its own
    if not local:
        return [pushed[r.name] for r in recs]
    unread = await hive.broker.unread_many(local)
    extra: dict[str, dict[str, Any]] = {n: {} for n in local}
    for feature in hive.features:
        for n, fields in (await feature.status_fields_many(local)).items():
            extra[n].update(fields)
    questions = await _open_questions(hive, [r for r in recs if r.name in extra])
    return [
        pushed.get(r.name) or _row(hive, r, unread[r.name], extra[r.name], questions) for r in recs
    ]


def _row(
    hive: Hive,
    rec: AgentRecord,
    unread: int,
    extra: dict[str, Any],
    questions: dict[str, str | None],
) -> AgentStatusRow:
    name = rec.name
    fields: dict[str, Any] = {
        "name": name,
        "running": hive.connections(name) > 0,
        "paused": rec.paused,
        "parent": rec.parent,
        "active_model": hive.agent_configs.model(name),
        "kind": rec.kind,
        "runtime": rec.runtime,
        "generation": rec.generation,
        "unread": unread,
    }
    fields.update(extra)
    if fields["running"] and rec.status_text:
        fields["status_text"] = rec.status_text
        fields["status_set_at"] = rec.status_set_at
    seen = hive.agent_states.observe(
        name,
        Facts(
            running=fields["running"],
            connected=hive.connections(name) > 0,
            transient=fields.get("transient"),
            crashed=bool(fields.get("failed")),
            paused=rec.paused,
            node_lost=bool(fields.pop("node_lost", False)),
            open_question=questions.get(name),
            open_permission=fields.pop("open_permission", None),  # the permissions feature's
            report=hive.agent_states.reported(name),
        ),
    )
    fields.update(state=seen.state.value, state_note=seen.note, state_since=seen.since)
    return AgentStatusRow(**fields)


def _from_its_node(hive: Hive, name: str) -> AgentStatusRow | None:
    if not hive.runs("nodes"):
        return None
    relay = getattr(hive.feature("nodes"), "relay", None)
    return relay.row(name) if relay is not None else None


async def _open_questions(hive: Hive, recs: Sequence[AgentRecord]) -> dict[str, str | None]:
    """The oldest open operator question of each agent's current incarnation, as a note (one
    read of every open question: there are few)."""
    questions = hive.questions if hive.runs("questions") else None  # a hive may run without it
    if questions is None:
        return {}
    generation = {r.name: r.generation for r in recs}
    out: dict[str, str | None] = {}
    for q in await questions.store.pending():  # oldest first
        if (
            q.asker not in out
            and q.generation is not None
            and generation.get(q.asker) == q.generation
        ):
            out[q.asker] = clip(f"question #{q.id}: {q.question}", 200)
    return out
