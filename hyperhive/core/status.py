"""Agent status rows (`agent_status`, the dashboard): registry facts plus what features add.

Invariants: `status_text`/`status_set_at` are omitted when unset or when the agent is not
running; optional fields are None (and so omitted on the wire) rather than guessed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hyperhive.wire.host import AgentStatusRow

if TYPE_CHECKING:
    from hyperhive.core.hive import Hive


async def status_row(hive: Hive, name: str) -> AgentStatusRow:
    rec = hive.registry.require(name)
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
    return AgentStatusRow(**fields)


async def status_rows(hive: Hive) -> list[AgentStatusRow]:
    return [await status_row(hive, n) for n in hive.registry.names()]
