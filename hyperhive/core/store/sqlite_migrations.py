"""The SQLite backend's schema: every migration of the broker database, in order, in one place.

Never edit a released migration: add a new one at the end of `MIGRATIONS`. A test proves a
fresh schema equals a migrated one (`tests/core/test_migrations.py`).

Timestamps are RFC 3339 UTC text with microseconds (`hyperhive.clock.iso`) in every table, so
they compare correctly as strings (`deadline_at <= ?`, `due_at <= ?`). A second backend keeps
its own migrations in one module beside its stores, the same way.
"""

from __future__ import annotations

import sqlite3

from hyperhive.core.store.budgets_sqlite import m0007_budgets
from hyperhive.core.store.search_sqlite import m0006_search
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


# 0002: operator questions (`questions_sqlite.py`) and reminders (`reminders_sqlite.py`)
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


# 0003: operator approvals (`approvals_sqlite.py`)
def m0003_approvals(conn: sqlite3.Connection) -> None:
    execute_script(
        conn,
        """
        CREATE TABLE approvals (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            agent TEXT NOT NULL,
            kind TEXT NOT NULL,
            commit_ref TEXT NOT NULL DEFAULT '',
            fetched_sha TEXT,
            requested_by TEXT NOT NULL,
            requested_at TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'approved', 'denied', 'failed', 'cancelled')),
            resolved_at TEXT,
            note TEXT NOT NULL DEFAULT '',
            description TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX approvals_pending ON approvals(requested_by, id) WHERE status = 'pending';
        CREATE INDEX approvals_by_agent ON approvals(agent, id);
        CREATE UNIQUE INDEX approvals_one_pending_create ON approvals(agent, kind)
            WHERE status = 'pending' AND kind IN ('spawn', 'init_config')
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


def m0005_nodes(conn: sqlite3.Connection) -> None:
    """Nodes (`core/store/nodes.py`): the hosts serving the hive, their heartbeats, where each
    agent is placed, and the hive-wide peer secret (one row)."""
    execute_script(
        conn,
        """
        CREATE TABLE nodes (
            name TEXT PRIMARY KEY,
            heartbeat_at REAL NOT NULL,
            started_at REAL NOT NULL,
            load REAL NOT NULL DEFAULT 0,
            mem_free_mb INTEGER NOT NULL DEFAULT 0,
            agents INTEGER NOT NULL DEFAULT 0,
            peer_url TEXT NOT NULL DEFAULT '',
            dashboard_url TEXT NOT NULL DEFAULT ''
        );
        CREATE TABLE agent_nodes (
            agent TEXT PRIMARY KEY,
            node TEXT NOT NULL
        );
        CREATE TABLE hive_secret (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            secret TEXT NOT NULL
        )
        """,
    )


def m0008_permissions(conn: sqlite3.Connection) -> None:
    """Tool permission requests asked of the operator, and each agent incarnation's kept
    "allow always" rules (`core/permissions.py`)."""
    execute_script(
        conn,
        """
        CREATE TABLE permission_requests (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            agent TEXT NOT NULL,
            generation INTEGER NOT NULL DEFAULT 0,
            harness TEXT NOT NULL,
            key TEXT NOT NULL,
            tool TEXT NOT NULL,
            input_json TEXT NOT NULL,
            tool_use_id TEXT,
            reason TEXT,
            rule TEXT,
            asked_at TEXT NOT NULL,
            deadline_at TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending',
            decided_at TEXT,
            note TEXT NOT NULL DEFAULT '',
            kept_rule TEXT
        );
        CREATE UNIQUE INDEX permission_requests_key ON permission_requests(agent, key);
        CREATE INDEX permission_requests_pending ON permission_requests(agent, id)
            WHERE status = 'pending';
        CREATE TABLE permission_rules (
            agent TEXT NOT NULL,
            generation INTEGER NOT NULL,
            rule TEXT NOT NULL,
            kept_at TEXT NOT NULL,
            PRIMARY KEY (agent, generation, rule)
        )
        """,
    )


def m0009_unread_index(conn: sqlite3.Connection) -> None:
    """Unread counts answered from one index (`count_undelivered`, every status row): an
    agent's undelivered rows of one generation are a single range of it, no table row read
    (`delivered_at`, always NULL in it, is a column only so sqlite sees the index covers)."""
    execute_script(
        conn,
        """
        CREATE INDEX messages_unread ON messages(recipient, recipient_generation, delivered_at)
            WHERE delivered_at IS NULL
        """,
    )


MIGRATIONS: list[Migration] = [
    Migration("0001_messages_agents", m0001_messages_agents),
    Migration("0002_questions_reminders", m0002_questions_reminders),
    Migration("0003_approvals", m0003_approvals),
    Migration("0004_generations", m0004_generations),
    Migration("0005_nodes", m0005_nodes),
    Migration("0006_search", m0006_search),  # full-text search (`search_sqlite.py`)
    Migration("0007_budgets", m0007_budgets),  # budgets + messages.trace_parent
    Migration("0008_permissions", m0008_permissions),
    Migration("0009_unread_index", m0009_unread_index),  # cheap unread counts (issue #18)
]
