"""The throwaway PostgreSQL cluster of `tests/support/postgres.py`: each test gets its own
fresh database, reachable over the unix socket and over loopback TCP."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from tests.support.postgres import PgCluster, scratch_base


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


def test_made_databases_are_dropped_even_with_a_client_connected(pg_cluster: PgCluster) -> None:
    url = pg_cluster.new_database()
    name = url.split("@/")[1].split("?")[0]
    listed = "SELECT count(*) FROM pg_database WHERE datname = '{}'"
    with psycopg.connect(url) as conn:  # a leftover client of the test
        assert pg_cluster.sql(listed.format(name)).strip() == "1"
        pg_cluster.drop_new_databases()
        assert pg_cluster.sql(listed.format(name)).strip() == "0"
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")


def test_test_clusters_live_on_the_tmpfs_when_it_has_room(pg_cluster: PgCluster) -> None:
    assert pg_cluster.root.parent == scratch_base(durable=False)
    assert scratch_base(durable=True) == Path("/tmp")
