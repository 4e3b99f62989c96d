"""The seam through which hive features (questions, reminders, approvals, lifecycle, ...) plug
into the core without the core knowing them.

A feature is built by the composition root (`hyperhive.assembly`) with everything it needs of
other features passed to its constructor as narrow protocols (`approvals.LifecycleOps`,
`lifecycle.ConfigOps`, ...), never looked up on the hive. It builds its own state in
`__init__`; `start(hive)` gives it the core's parts (db, registry, broker, event hub,
dispatchers), which exist only once the hive starts.

Order, declared rather than implied by the list: a feature names in `after` the features that
must start before it. `start_order` sorts a list by those declarations (stable: otherwise the
list's order) and refuses a cycle or a name that is not in the list.

The hive calls, in that order: every `start(hive)` (register verbs, build stores), then — once
the manager is registered and every socket is open — every `after_start()` (adopt sandboxes,
start serving, spawn loops); on close, every `aclose()` in reverse start order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from hyperhive.errors import ConfigError

if TYPE_CHECKING:
    from hyperhive.core.hive import Hive


class Feature(Protocol):
    name: str
    after: tuple[str, ...]  # names of the features that must start before this one

    async def start(self, hive: Hive) -> None: ...

    async def after_start(self) -> None:
        """Once every feature started and every socket is open (the hive's last start step)."""
        ...

    async def aclose(self) -> None: ...

    async def status_fields(self, agent: str) -> dict[str, Any]:
        """Fields for this agent's status row (omit keys you have nothing for)."""
        ...

    async def status_fields_many(self, agents: Sequence[str]) -> dict[str, dict[str, Any]]:
        """`status_fields` of each of `agents` (a status refresh of the whole hive, one call
        per feature): a feature that reads a store answers them in one read."""
        ...


class BaseFeature:
    """Convenience base with no-op hooks."""

    name = "feature"
    after: tuple[str, ...] = ()
    hive: Hive

    async def start(self, hive: Hive) -> None:
        self.hive = hive

    async def after_start(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    async def status_fields(self, agent: str) -> dict[str, Any]:
        return {}

    async def status_fields_many(self, agents: Sequence[str]) -> dict[str, dict[str, Any]]:
        return {a: await self.status_fields(a) for a in agents}


def start_order(features: Sequence[Feature]) -> list[Feature]:
    """`features` sorted so each starts after the ones it names in `after` (list order
    otherwise). `ConfigError` on a duplicate name, an unknown name in `after`, or a cycle."""
    by_name: dict[str, Feature] = {}
    for f in features:
        if f.name in by_name:
            raise ConfigError(f"two features are named {f.name!r}")
        by_name[f.name] = f
    for f in features:
        missing = [n for n in f.after if n not in by_name]
        if missing:
            raise ConfigError(
                f"feature {f.name!r} starts after {', '.join(map(repr, missing))}, "
                "which this hive does not run"
            )
    out: list[Feature] = []
    done: set[str] = set()
    visiting: set[str] = set()

    def visit(f: Feature) -> None:
        if f.name in done:
            return
        if f.name in visiting:
            raise ConfigError(f"features start after each other in a cycle (at {f.name!r})")
        visiting.add(f.name)
        for dep in f.after:
            visit(by_name[dep])
        visiting.discard(f.name)
        done.add(f.name)
        out.append(f)

    for f in features:
        visit(f)
    return out
