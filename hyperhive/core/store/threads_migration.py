"""Migration 0002: the `operator_questions` and `reminders` tables.

Timestamps are RFC 3339 UTC text with microseconds (`hyperhive.clock.iso`), like `messages`,
so they compare correctly as strings (`deadline_at <= ?`, `due_at <= ?`).
"""

from __future__ import annotations

import sqlite3

from hyperhive.db import execute_script


def m0002_questions_reminders(conn: sqlite3.Connection) -> None:
    execute_script(
        conn,
        """
        CREATE TABLE operator_questions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            asker TEXT NOT NULL,
            question TEXT NOT NULL,
            options_json TEXT NOT NULL DEFAULT '[]',
            multi INTEGER NOT NULL DEFAULT 0,
            asked_at TEXT NOT NULL,
            deadline_at TEXT,
            answered_at TEXT,
            answer TEXT,
            target TEXT NOT NULL DEFAULT 'operator'
        );
        CREATE INDEX operator_questions_open
            ON operator_questions(asker, id) WHERE answered_at IS NULL;
        CREATE INDEX operator_questions_deadline
            ON operator_questions(deadline_at)
            WHERE answered_at IS NULL AND deadline_at IS NOT NULL;
        CREATE TABLE reminders (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            agent TEXT NOT NULL,
            body TEXT NOT NULL,
            file_path TEXT,
            due_at TEXT NOT NULL,
            created_at TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            status TEXT NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'delivered', 'failed')),
            delivered_at TEXT,
            last_error TEXT
        );
        CREATE INDEX reminders_due ON reminders(due_at, id) WHERE status = 'pending';
        CREATE INDEX reminders_pending_by_agent ON reminders(agent) WHERE status = 'pending'
        """,
    )
