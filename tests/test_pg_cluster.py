"""The throwaway PostgreSQL cluster of `tests/support/postgres.py`: each test gets its own
fresh database, reachable over the unix socket and over loopback TCP."""

from __future__ import annotations

from collections.abc import Callable

import psycopg

from tests.support.postgres import PgCluster


def test_fresh_database_per_call(pg_url: Callable[[], str]) -> None:
    a, b = pg_url(), pg_url()
    assert a != b
    with psycopg.connect(a) as conn:
        conn.execute("CREATE TABLE t (x int)")
        conn.execute("INSERT INTO t VALUES (1)")
    with psycopg.connect(b) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 't'"
        ).fetchone()
        assert tables == (0,)


def test_loopback_tcp(pg_cluster: PgCluster) -> None:
    url = pg_cluster.new_database(tcp=True)
    assert "127.0.0.1" in url
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("hive",)
