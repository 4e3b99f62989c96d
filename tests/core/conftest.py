"""Hive-level tests on both storage backends.

The modules in `BOTH_BACKENDS` run every test twice: on the sqlite default and on a fresh
PostgreSQL database of the session's throwaway cluster (`tests/support/postgres.py`). The
autouse `hive_backend` fixture sets `HIVE_DATABASE_URL` for the PostgreSQL run, so every hive
the test builds (the `hive` fixture, `build_hive`, a restarted hive, a `hive serve` child via
`tests/support/daemon.py`) uses that database; restarts within one test reuse it.

Every module here that builds a hive is in `BOTH_BACKENDS`; the ones left out are unit tests
of primitives that build none, and the PostgreSQL- or multi-node-only modules (`test_pg_*`,
`test_node*`, `test_confighandoff`, `test_eventrelay`), which run on PostgreSQL already.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hyperhive.core.store.backend import ENV_URL

BOTH_BACKENDS = {
    "test_access",
    "test_agentstates",
    "test_approvals",
    "test_attention",
    "test_broker",
    "test_broker_index",
    "test_budgets",
    "test_configs",
    "test_delivery_kill",
    "test_durability",
    "test_events",
    "test_followups",
    "test_generations",
    "test_leases",
    "test_lifecycle",
    "test_permissions",
    "test_policy",
    "test_questions",
    "test_reminders",
    "test_retention",
    "test_search",
    "test_servers",
    "test_socket_fuzz",
    "test_socket_limits",
    "test_status",
    "test_subscribers",
    "test_tombstones",
    "test_trace_parent",
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    module = metafunc.module.__name__.rsplit(".", 1)[-1]
    if "hive_backend" in metafunc.fixturenames and module in BOTH_BACKENDS:
        metafunc.parametrize("hive_backend", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture(autouse=True)
def hive_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """`sqlite` (default) or `postgresql` (then HIVE_DATABASE_URL points at a fresh database)."""
    kind = str(getattr(request, "param", "sqlite"))
    if kind == "postgresql":
        monkeypatch.setenv(ENV_URL, request.getfixturevalue("pg_url")())
    else:
        monkeypatch.delenv(ENV_URL, raising=False)
    yield kind
