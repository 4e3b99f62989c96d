"""Hive-level tests on both storage backends.

The modules in `BOTH_BACKENDS` run every test twice: on the sqlite default and on a fresh
PostgreSQL database of the session's throwaway cluster (`tests/support/postgres.py`). The
autouse `hive_backend` fixture sets `HIVE_DATABASE_URL` for the PostgreSQL run, so every hive
the test builds (the `hive` fixture, `build_hive`, a restarted hive, a `hive serve` child via
`tests/support/daemon.py`) uses that database; restarts within one test reuse it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hyperhive.core.store.backend import ENV_URL

BOTH_BACKENDS = {
    "test_approvals",
    "test_budgets",
    "test_broker",
    "test_broker_index",
    "test_delivery_kill",
    "test_durability",
    "test_followups",
    "test_generations",
    "test_leases",
    "test_permissions",
    "test_questions",
    "test_reminders",
    "test_search",
    "test_subscribers",
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
