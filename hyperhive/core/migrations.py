"""The broker database's migrations, in order. Never edit a released one: add a new one.

Each feature owns its migration function; `MIGRATIONS` is the single ordered list.
"""

from __future__ import annotations

import sqlite3

from hyperhive.core.store.approvals_sqlite import m0003_approvals
from hyperhive.core.store.threads_migration import m0002_questions_reminders
from hyperhive.db import Migration, execute_script


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


def m0004_generations(conn: sqlite3.Connection) -> None:
    """Spawn generations: messages carry their recipient's generation (0 = not an agent: the
    operator, or an agent that no longer existed), questions their asker's, reminders their
    agent's, and
    `agent_generations` keeps each name's last generation across destroy (and purge), so a
    new incarnation never reuses one. Rows from before are stamped with the generation of the
    agent of that name alive now (0 if none: old mail of destroyed agents stays undelivered)."""
    execute_script(
        conn,
        """
        ALTER TABLE messages ADD COLUMN recipient_generation INTEGER NOT NULL DEFAULT 0;
        UPDATE messages SET recipient_generation = COALESCE(
            (SELECT generation FROM agents WHERE agents.name = messages.recipient), 0);
        ALTER TABLE reminders ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;
        UPDATE reminders SET generation = COALESCE(
            (SELECT generation FROM agents WHERE agents.name = reminders.agent), 0);
        ALTER TABLE operator_questions ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;
        UPDATE operator_questions SET generation = COALESCE(
            (SELECT generation FROM agents WHERE agents.name = operator_questions.asker), 0);
        CREATE TABLE agent_generations (
            name TEXT PRIMARY KEY,
            generation INTEGER NOT NULL
        );
        INSERT INTO agent_generations(name, generation) SELECT name, generation FROM agents
        """,
    )


MIGRATIONS: list[Migration] = [
    Migration("0001_messages_agents", m0001_messages_agents),
    Migration("0002_questions_reminders", m0002_questions_reminders),
    Migration("0003_approvals", m0003_approvals),
    Migration("0004_generations", m0004_generations),
]
