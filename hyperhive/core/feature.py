"""The seam through which hive features (questions, reminders, approvals, lifecycle, ...) plug
into the core without the core knowing them.

A feature is started after the core's own parts exist (db, registry, broker, event hub,
dispatchers) and closed before them, in reverse order. It registers its verb handlers, starts
its supervised tasks, and may contribute fields to agent status rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from hyperhive.core.hive import Hive


class Feature(Protocol):
    name: str

    async def start(self, hive: Hive) -> None: ...

    async def aclose(self) -> None: ...

    async def status_fields(self, agent: str) -> dict[str, Any]:
        """Fields for this agent's status row (omit keys you have nothing for)."""
        ...


class BaseFeature:
    """Convenience base with no-op hooks."""

    name = "feature"

    async def start(self, hive: Hive) -> None:
        self.hive = hive

    async def aclose(self) -> None:
        return None

    async def status_fields(self, agent: str) -> dict[str, Any]:
        return {}
