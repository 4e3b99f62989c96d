"""The broker database's migrations, in order. Never edit a released one: add a new one.

Each feature owns its migration function; `MIGRATIONS` is the single ordered list.
"""

from __future__ import annotations

import sqlite3

from hyperhive.core.db import Migration, execute_script
from hyperhive.core.store.approvals_sqlite import m0003_approvals
from hyperhive.core.store.threads_migration import m0002_questions_reminders


def m0001_messages_agents(conn: sqlite3.Connection) -> None:
    execute_script(
        conn,
        """
        CREATE TABLE messages (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            sender TEXT NOT NULL,
            recipient TEXT NOT NULL,
            body TEXT NOT NULL,
            kind TEXT NOT NULL DEFAULT 'message',
            sent_at TEXT NOT NULL,
            delivered_at TEXT
        );
        CREATE INDEX messages_undelivered ON messages(recipient, id) WHERE delivered_at IS NULL;
        CREATE INDEX messages_by_recipient ON messages(recipient, id);
        CREATE INDEX messages_by_sender ON messages(sender, id);
        CREATE TABLE agents (
            name TEXT PRIMARY KEY,
            kind TEXT NOT NULL CHECK (kind IN ('agent', 'manager')),
            created_at TEXT NOT NULL,
            generation INTEGER NOT NULL DEFAULT 1,
            runtime TEXT NOT NULL DEFAULT 'external',
            paused INTEGER NOT NULL DEFAULT 0,
            status_text TEXT,
            status_set_at TEXT,
            parent TEXT,
            model TEXT
        );
        """,
    )


MIGRATIONS: list[Migration] = [
    Migration("0001_messages_agents", m0001_messages_agents),
    Migration("0002_questions_reminders", m0002_questions_reminders),
    Migration("0003_approvals", m0003_approvals),
]
