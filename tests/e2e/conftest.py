"""End-to-end fixtures: a real core, real sandboxes (bwrap where it works here, else the
process runtime, said out loud), the real `claude` CLI, and `hive sim` as the model."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from hyperhive.assembly import build_hive
from hyperhive.config import Defaults, HiveConfig, ModelEndpoint
from hyperhive.core.hive import Hive
from hyperhive.core.logs import read_logs
from hyperhive.harness.stats import read_stats
from hyperhive.paths import HivePaths
from hyperhive.runtime.choose import sandbox_support
from hyperhive.sim import Scenario, SimServer

logger = logging.getLogger(__name__)

MakeHive = Callable[..., Awaitable[tuple[Hive, SimServer]]]

BOTH_MODES = pytest.mark.parametrize("warm_seconds", [0, 600], ids=["cold", "warm"])
"""Run a test with one `claude` process per turn and with a warm one (`make_hive` and the
`daemon` fixture read the parameter; the hive's default is warm)."""


def warm_param(request: pytest.FixtureRequest) -> float | None:
    """The test's `warm_seconds` parameter (`BOTH_MODES`), None when it has none."""
    callspec = getattr(request.node, "callspec", None)
    value = callspec.params.get("warm_seconds") if callspec is not None else None
    return float(value) if value is not None else None


def e2e_runtime() -> str:
    why = sandbox_support()
    if why is not None:
        print(f"\n[e2e] bubblewrap unavailable ({why}): agents run with the process runtime")
        return "process"
    return "bwrap"


@pytest.fixture
async def make_hive(short_tmp: Path, request: pytest.FixtureRequest) -> AsyncIterator[MakeHive]:
    stack = contextlib.AsyncExitStack()
    hives: list[Hive] = []
    warm = warm_param(request)

    async def make(scenario: dict[str, Any], **cfg: Any) -> tuple[Hive, SimServer]:
        """`endpoint={...}` and `defaults={...}` override `model_endpoint` and `defaults` keys."""
        sim = await stack.enter_async_context(SimServer(Scenario.model_validate(scenario)))
        endpoint = {
            "base_url": f"{sim.base_url}/a/{{agent}}",
            "rate_limit_wait_seconds": 1,
            **cfg.pop("endpoint", {}),
        }
        defaults = cfg.pop("defaults", {})
        if warm is not None:
            defaults.setdefault("warm_seconds", warm)
        config = HiveConfig(
            defaults=Defaults(
                runtime=cfg.pop("runtime", e2e_runtime()),
                network="none",
                **defaults,
            ),
            model_endpoint=ModelEndpoint(**endpoint),
            **cfg,
        )
        hive = await stack.enter_async_context(build_hive(HivePaths(short_tmp / "h"), config))
        hives.append(hive)
        return hive, sim

    try:
        yield make
    finally:
        for hive in hives:  # sandboxes outlive the daemon by design: stop them explicitly
            await log_exited_harnesses(hive)
            for name in hive.registry.names():
                with contextlib.suppress(Exception):
                    await hive.lifecycle.kill_agent(name)
        await stack.aclose()


async def log_exited_harnesses(hive: Hive) -> None:
    """Log the harness log tail of every agent whose harness ended without being asked (shown
    with a failing test's captured log: an agent that crashed mid-test, e.g. `crashed (exit
    2)` once in test_model_failures under load, is otherwise gone with the test's temp dir)."""
    for name in hive.registry.names():
        with contextlib.suppress(Exception):
            st = await hive.lifecycle.status(name)
            if st.running or st.exit_code is None or name in hive.lifecycle.expected_exit:
                continue
            tail = read_logs(hive.paths.logs_dir(name), "harness", 40)
            logger.warning(
                "%s exited (%s) during the test; its harness log:\n%s",
                name,
                st.exit_code,
                "\n".join(tail),
            )


def event_rows(state_dir: Path, kind: str) -> list[dict[str, Any]]:
    """The payloads of an agent's stored events of `kind`, oldest first."""
    import json
    import sqlite3

    conn = sqlite3.connect(state_dir / "hyperhive-events.sqlite")
    try:
        rows = conn.execute("SELECT payload_json FROM events WHERE kind = ? ORDER BY id", (kind,))
        return [json.loads(p) for (p,) in rows]
    finally:
        conn.close()


def turns(hive: Hive, name: str) -> list[dict[str, Any]]:
    """The agent's turn-stats rows, oldest first."""
    rows, _ = read_stats(hive.paths.state_dir(name), 1000)
    return list(reversed(rows))
