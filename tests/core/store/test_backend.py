"""Choosing the hive's storage from a URL: precedence (flag > HIVE_DATABASE_URL > hive.toml >
sqlite), schemes, password redaction, and a hive started from each source."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from hyperhive.assembly import build_hive
from hyperhive.config import parse_config
from hyperhive.core.store.backend import (
    backend_kind,
    database_url,
    redact,
    sqlite_path,
)
from hyperhive.errors import ConfigError
from hyperhive.paths import HivePaths


def test_precedence_flag_env_file_default() -> None:
    env = {"HIVE_DATABASE_URL": "postgresql://env/db"}
    assert database_url("postgresql://flag/db", "postgresql://file/db", env) == (
        "postgresql://flag/db"
    )
    assert database_url(None, "postgresql://file/db", env) == "postgresql://env/db"
    assert database_url(None, "postgresql://file/db", {}) == "postgresql://file/db"
    assert database_url(None, "", {}) == ""
    assert database_url("", "", {"HIVE_DATABASE_URL": ""}) == ""


def test_schemes() -> None:
    assert backend_kind("") == "sqlite"
    assert backend_kind("sqlite:///tmp/x.sqlite") == "sqlite"
    assert backend_kind("postgresql://u@h/d") == "postgresql"
    assert backend_kind("postgres://u@h/d") == "postgresql"
    with pytest.raises(ConfigError, match="unknown scheme 'mysql'"):
        backend_kind("mysql://u:secret@h/d")
    with pytest.raises(ConfigError) as info:
        backend_kind("mysql://u:secret@h/d")
    assert "secret" not in str(info.value)


def test_redact_and_sqlite_path(tmp_path: Path) -> None:
    assert redact("postgresql://hive:pw@db:5433/h") == "postgresql://hive:***@db:5433/h"
    assert redact("postgresql://hive@db/h") == "postgresql://hive@db/h"
    assert sqlite_path("", tmp_path / "d") == tmp_path / "d"
    assert sqlite_path("sqlite:///abs/x.sqlite", tmp_path) == Path("/abs/x.sqlite")
    with pytest.raises(ConfigError):
        sqlite_path("sqlite:relative", tmp_path)


def test_hive_toml_database_url() -> None:
    cfg = parse_config('[database]\nurl = "postgresql://h/d"\n')
    assert cfg.database.url == "postgresql://h/d"
    with pytest.raises(ConfigError, match=r"database\.nope"):
        parse_config("[database]\nnope = 1\n")


async def test_a_hive_from_hive_toml_then_from_the_flag(
    short_tmp: Path, pg_url: Callable[[], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HIVE_DATABASE_URL", raising=False)
    url = pg_url()
    cfg = parse_config(f'[defaults]\nruntime = "external"\n[database]\nurl = "{url}"\n')
    paths = HivePaths(short_tmp / "h")
    async with build_hive(paths, cfg, without=("dashboard",)) as hive:
        assert hive.storage.kind == "postgresql"
        await hive.spawn("alice")
    assert not paths.db_file.exists()  # nothing went to sqlite
    # the flag wins over the file: the same home on sqlite sees no alice
    async with build_hive(paths, cfg, database="sqlite:", without=("dashboard",)) as hive:
        assert hive.storage.kind == "sqlite"
        assert hive.registry.get("alice") is None


async def test_an_unknown_scheme_stops_the_hive_before_it_starts(short_tmp: Path) -> None:
    with pytest.raises(ConfigError):
        build_hive(HivePaths(short_tmp / "h"), database="mongodb://x/y")
