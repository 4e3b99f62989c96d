"""Migrations: a database migrated from 0001 has exactly the schema of a fresh one, and its old
rows stay readable."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from hyperhive.core.store.sqlite_migrations import MIGRATIONS
from hyperhive.db import Database


def test_migration_names_are_unique_and_ordered() -> None:
    names = [m.name for m in MIGRATIONS]
    assert len(set(names)) == len(names)
    assert names == sorted(names)
    assert names[:2] == ["0001_messages_agents", "0002_questions_reminders"]


async def test_fresh_schema_equals_migrated(short_tmp: Path) -> None:
    old = short_tmp / "old.sqlite"
    async with Database(old, MIGRATIONS[:1]) as db:

        def seed(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO agents(name, kind, created_at)"
                " VALUES ('manager', 'manager', '2026-01-01T00:00:00.000000Z')"
            )
            conn.execute(
                "INSERT INTO messages(sender, recipient, body, sent_at)"
                " VALUES ('operator', 'manager', 'from before', '2026-01-01T00:00:01.000000Z')"
            )
            conn.execute(  # mail of an agent destroyed before generations existed
                "INSERT INTO messages(sender, recipient, body, sent_at)"
                " VALUES ('operator', 'gone', 'for the dead', '2026-01-01T00:00:02.000000Z')"
            )

        await db.write(seed)
    assert "operator_questions" not in dict(Database(old).schema())

    async with Database(old, MIGRATIONS) as db:
        assert db.applied_migrations == [m.name for m in MIGRATIONS[1:]]
        bodies = await db.read(
            lambda c: [
                tuple(r)
                for r in c.execute(
                    "SELECT body, recipient_generation FROM messages ORDER BY id"
                ).fetchall()
            ]
        )
        # live agents' mail belongs to their current generation; a destroyed one's to none
        assert bodies == [("from before", 1), ("for the dead", 0)]
        gens = await db.read(
            lambda c: [tuple(r) for r in c.execute("SELECT * FROM agent_generations").fetchall()]
        )
        assert gens == [("manager", 1)]
        assert await db.read(lambda c: c.execute("SELECT name FROM agents").fetchone()[0]) == (
            "manager"
        )
        # the new tables work on the migrated database
        await db.write(
            lambda c: c.execute(
                "INSERT INTO operator_questions(asker, question, asked_at)"
                " VALUES ('manager', 'ok?', '2026-01-02T00:00:00.000000Z')"
            )
        )
        row = await db.read(
            lambda c: tuple(
                c.execute("SELECT options_json, multi, target FROM operator_questions").fetchone()
            )
        )
        assert row == ("[]", 0, "operator")

    fresh = short_tmp / "fresh.sqlite"
    async with Database(fresh, MIGRATIONS) as db:
        assert db.applied_migrations == [m.name for m in MIGRATIONS]
    assert Database(old).schema() == Database(fresh).schema()

    async with Database(old, MIGRATIONS) as db:  # re-opening applies nothing
        assert db.applied_migrations == []
