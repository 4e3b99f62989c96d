"""Agent status rows (`agent_status`, the dashboard): registry facts plus what features add.

Invariants: `status_text`/`status_set_at` are omitted when unset or when the agent is not
running; optional fields are None (and so omitted on the wire) rather than guessed. `state`
(+ `state_note`, `state_since`) is derived here, once, from the row's own facts plus the
harness's last report (`hyperhive.core.agentstate`), so every surface shows the same state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hyperhive.core.agentstate import Facts, clip
from hyperhive.core.permissions import PermissionsFeature, waiting_note
from hyperhive.wire.host import AgentStatusRow

if TYPE_CHECKING:
    from hyperhive.core.hive import Hive


async def status_row(hive: Hive, name: str) -> AgentStatusRow:
    rec = hive.registry.require(name)
    pushed = _from_its_node(hive, name)
    if pushed is not None:  # another live node runs it: its own row (core/noderelay.py)
        return pushed
    fields: dict[str, Any] = {
        "name": rec.name,
        "running": hive.connections(name) > 0,
        "paused": rec.paused,
        "parent": rec.parent,
        "active_model": hive.agent_configs.model(name),
        "kind": rec.kind,
        "runtime": rec.runtime,
        "generation": rec.generation,
        "unread": await hive.broker.unread(name),
    }
    for feature in hive.features:
        fields.update(await feature.status_fields(name))
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
            open_question=await _open_question(hive, name),
            open_permission=await _open_permission(hive, name),
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


async def _open_question(hive: Hive, name: str) -> str | None:
    """The oldest open operator question of `name`'s current incarnation, as a note."""
    questions = hive.questions if hive.runs("questions") else None  # a hive may run without it
    if questions is None:
        return None
    pending = await questions.store.pending(name)
    if not pending:
        return None
    q = pending[0]
    return clip(f"question #{q.id}: {q.question}", 200)


async def _open_permission(hive: Hive, name: str) -> str | None:
    """The oldest pending tool permission request of `name`, as a note."""
    if not hive.runs("permissions"):
        return None
    feature = hive.feature("permissions")
    assert isinstance(feature, PermissionsFeature)
    pending = await feature.pending(name)
    return waiting_note(pending[0]) if pending else None


async def status_rows(hive: Hive) -> list[AgentStatusRow]:
    return [await status_row(hive, n) for n in hive.registry.names()]
