"""The hive's storage, opened from one URL: every store the core uses plus the wake-up channel.

`open_storage(url, sqlite_path)` is the one place that picks a backend:
- `""` or `sqlite:` (the default) → the embedded sqlite file `hive.db` in the hive home
  (`SqliteStorage`, over `hyperhive.db.Database`);
- `sqlite:///ABS/PATH` → that sqlite file;
- `postgresql://...` / `postgres://...` → a PostgreSQL database shared by every node of the
  hive (`hyperhive.core.store.pg.PgStorage`, psycopg 3 + its pool; imported only then).

A `Storage` is an async context manager holding `messages`, `agents`, `questions`,
`reminders`, `approvals`, `search`, `permissions`, `budgets`. The `Hive` opens it on start and hands the stores to the
broker, the registry and the features (`hive.storage.questions`, ...); nothing else builds a store.

Wake-ups: `on_remote_messages(cb)` registers `cb(recipients)`, called on the event loop when
ANOTHER process committed messages for those recipients (PostgreSQL: LISTEN/NOTIFY on a
dedicated connection); `on_remote_rows(cb)` registers `cb(rows)`, called instead when the
notification carried the committed rows themselves (no read needed). The sqlite backend has one process per hive, so it never calls it;
this process's own commits reach the broker through `insert_messages`' `on_commit` as before.

URL precedence (`database_url`): `hive serve --db` > `HIVE_DATABASE_URL` > `[database] url` in
hive.toml > the sqlite default.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from hyperhive.core.store.base import Storage
from hyperhive.errors import ConfigError

if TYPE_CHECKING:
    from hyperhive.db import Database, TaskWatcher

ENV_URL = "HIVE_DATABASE_URL"


def database_url(flag: str | None, file_url: str = "", env: dict[str, str] | None = None) -> str:
    """The URL in force: the `--db` flag, else `HIVE_DATABASE_URL`, else hive.toml's
    `[database] url`, else "" (sqlite in the hive home)."""
    environ = os.environ if env is None else env
    for candidate in (flag, environ.get(ENV_URL), file_url):
        if candidate:
            return candidate.strip()
    return ""


def backend_kind(url: str) -> str:
    """`sqlite` or `postgresql` for a URL; `ConfigError` for anything else."""
    scheme = urlsplit(url).scheme.lower() if url else "sqlite"
    if scheme in ("", "sqlite"):
        return "sqlite"
    if scheme in ("postgresql", "postgres"):
        return "postgresql"
    raise ConfigError(
        f"database url {redact(url)!r}: unknown scheme {scheme!r} (use sqlite: or postgresql://)"
    )


def redact(url: str) -> str:
    """The URL without its password, for logs and status."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    user = parts.username or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))


class SqliteStorage(Storage):
    """The embedded default: one sqlite file, one process."""

    kind = "sqlite"

    def __init__(self, path: Path, tasks: TaskWatcher | None = None) -> None:
        from hyperhive.core.store.approvals_sqlite import SqliteApprovalStore
        from hyperhive.core.store.budgets_sqlite import SqliteBudgetStore
        from hyperhive.core.store.permissions_sqlite import SqlitePermissionStore
        from hyperhive.core.store.questions_sqlite import SqliteQuestionStore
        from hyperhive.core.store.reminders_sqlite import SqliteReminderStore
        from hyperhive.core.store.search_sqlite import SqliteSearchStore
        from hyperhive.core.store.sqlite import SqliteAgentStore, SqliteMessageStore
        from hyperhive.core.store.sqlite_migrations import MIGRATIONS
        from hyperhive.db import Database

        super().__init__()
        self.path = path
        self.url = f"sqlite:///{path}"
        self.db: Database = Database(path, MIGRATIONS, tasks=tasks)
        self.messages = SqliteMessageStore(self.db)
        self.agents = SqliteAgentStore(self.db)
        self.questions = SqliteQuestionStore(self.db)
        self.reminders = SqliteReminderStore(self.db)
        self.approvals = SqliteApprovalStore(self.db)
        self.search = SqliteSearchStore(self.db)
        self.permissions = SqlitePermissionStore(self.db)
        self.budgets = SqliteBudgetStore(self.db)

    async def open(self) -> None:
        await self.db.open()

    async def aclose(self) -> None:
        await self.db.aclose()


def sqlite_path(url: str, default: Path) -> Path:
    """The file of a sqlite URL (`""` / `sqlite:` → `default`; `sqlite:///abs/path`)."""
    if not url or url.rstrip(":/").lower() == "sqlite":
        return default
    path = urlsplit(url).path
    if not path.startswith("/"):
        raise ConfigError(f"database url {url!r}: a sqlite URL needs an absolute path")
    return Path(path)


def open_storage(url: str, sqlite_default: Path, tasks: TaskWatcher | None = None) -> Storage:
    """The storage for `url` (not yet opened: `async with` it or `await .open()`)."""
    kind = backend_kind(url)
    if kind == "sqlite":
        return SqliteStorage(sqlite_path(url, sqlite_default), tasks)
    from hyperhive.core.store.pg.storage import PgStorage

    return PgStorage(url, tasks)


__all__ = [
    "ENV_URL",
    "SqliteStorage",
    "Storage",
    "backend_kind",
    "database_url",
    "open_storage",
    "redact",
    "sqlite_path",
]


def sqlite_database(storage: Storage) -> Database | None:
    """The sqlite `Database` under `storage`, if it is the sqlite backend (tests, stats)."""
    return storage.db if isinstance(storage, SqliteStorage) else None
