"""A scratch schema on a PostgreSQL database for one benchmark run: `scratch_schema(url)`
creates `hb_<random>`, yields a URL whose connections use it (`options=-c search_path=...`),
and drops it (CASCADE) afterwards, so every run starts from an empty hive and leaves nothing
behind. Needs only CREATE on the database, not CREATEDB."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import psycopg


def with_search_path(url: str, schema: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "options"]
    query.append(("options", f"-c search_path={schema}"))
    return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))


@contextlib.contextmanager
def scratch_schema(url: str) -> Iterator[str]:
    schema = f"hb_{secrets.token_hex(4)}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield with_search_path(url, schema)
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
