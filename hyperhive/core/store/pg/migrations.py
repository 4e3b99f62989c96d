"""The PostgreSQL backend's schema: every migration, in order, in one place (the same tables and
meaning as `sqlite_migrations.py`, written once in their final shape, plus the wake-up trigger).

Never edit a released migration: append a new one to `MIGRATIONS`. `migrate` runs inside the
caller's transaction after taking `pg_advisory_xact_lock(LOCK_KEY)`: the first node to start
applies what is missing, the others wait for it and then find nothing to do.

Timestamps are RFC 3339 UTC text (`hyperhive.clock.iso`) with the "C" collation, so they
compare as strings exactly as on sqlite whatever the database's locale.
"""

from __future__ import annotations

from typing import Any

import psycopg

LOCK_KEY = 0x68697665  # "hive": the advisory lock migrations run under

TS = 'TEXT COLLATE "C"'

M0001 = f"""
CREATE TABLE agents (
    name TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('agent', 'manager')),
    created_at {TS} NOT NULL,
    generation BIGINT NOT NULL DEFAULT 1,
    runtime TEXT NOT NULL DEFAULT 'external',
    paused BOOLEAN NOT NULL DEFAULT FALSE,
    status_text TEXT,
    status_set_at {TS},
    parent TEXT,
    model TEXT
);
CREATE TABLE agent_generations (name TEXT PRIMARY KEY, generation BIGINT NOT NULL);
CREATE TABLE messages (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sender TEXT NOT NULL,
    recipient TEXT NOT NULL,
    body TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT 'message',
    sent_at {TS} NOT NULL,
    delivered_at {TS},
    recipient_generation BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX messages_undelivered ON messages(recipient, id) WHERE delivered_at IS NULL;
CREATE INDEX messages_by_recipient ON messages(recipient, id);
CREATE INDEX messages_by_sender ON messages(sender, id);
CREATE INDEX messages_delivered_sent ON messages(sent_at) WHERE delivered_at IS NOT NULL;
CREATE TABLE operator_questions (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    asker TEXT NOT NULL,
    question TEXT NOT NULL,
    options_json TEXT NOT NULL DEFAULT '[]',
    multi BOOLEAN NOT NULL DEFAULT FALSE,
    asked_at {TS} NOT NULL,
    deadline_at {TS},
    answered_at {TS},
    answer TEXT,
    target TEXT NOT NULL DEFAULT 'operator',
    generation BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX operator_questions_open ON operator_questions(asker, id) WHERE answered_at IS NULL;
CREATE INDEX operator_questions_deadline ON operator_questions(deadline_at)
    WHERE answered_at IS NULL AND deadline_at IS NOT NULL;
CREATE TABLE reminders (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    agent TEXT NOT NULL,
    body TEXT NOT NULL,
    file_path TEXT,
    due_at {TS} NOT NULL,
    created_at {TS} NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    delivered_at {TS},
    last_error TEXT,
    generation BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX reminders_due ON reminders(due_at, id) WHERE status = 'pending';
CREATE INDEX reminders_pending_by_agent ON reminders(agent) WHERE status = 'pending';
CREATE TABLE approvals (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    agent TEXT NOT NULL,
    kind TEXT NOT NULL,
    commit_ref TEXT NOT NULL DEFAULT '',
    fetched_sha TEXT,
    requested_by TEXT NOT NULL,
    requested_at {TS} NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'approved', 'denied', 'failed', 'cancelled')),
    resolved_at {TS},
    note TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT ''
);
CREATE INDEX approvals_pending ON approvals(requested_by, id) WHERE status = 'pending';
CREATE INDEX approvals_by_agent ON approvals(agent, id);
CREATE UNIQUE INDEX approvals_one_pending_create ON approvals(agent, kind)
    WHERE status = 'pending' AND kind IN ('spawn', 'init_config');
"""

# the trace context a message carries (docs/operations.md, "Tracing"); NULL when not traced
M0003_TRACE_PARENT = "ALTER TABLE messages ADD COLUMN trace_parent TEXT"

# full-text search (`search.py`): a stored generated tsvector per searchable table (kept in
# step by PostgreSQL itself on every insert/update, gone with its row) with a GIN index, and
# the turn docs the core copies in from the agents' event stores
_EN = "'english'"
M0002_SEARCH = f"""
ALTER TABLE messages ADD COLUMN search tsvector GENERATED ALWAYS AS (
    to_tsvector({_EN}, body || ' ' || sender || ' ' || recipient)) STORED;
CREATE INDEX messages_search ON messages USING GIN (search);
ALTER TABLE operator_questions ADD COLUMN search tsvector GENERATED ALWAYS AS (
    to_tsvector({_EN}, question || ' ' || coalesce(answer, '') || ' ' || asker)) STORED;
CREATE INDEX operator_questions_search ON operator_questions USING GIN (search);
ALTER TABLE approvals ADD COLUMN search tsvector GENERATED ALWAYS AS (
    to_tsvector({_EN}, description || ' ' || note || ' ' || agent || ' ' || kind || ' '
        || requested_by)) STORED;
CREATE INDEX approvals_search ON approvals USING GIN (search);
CREATE TABLE turn_docs (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    agent TEXT NOT NULL,
    event_id BIGINT NOT NULL,
    ts {TS} NOT NULL,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    search tsvector GENERATED ALWAYS AS (
        to_tsvector({_EN}, body || ' ' || title || ' ' || agent)) STORED,
    UNIQUE (agent, event_id)
);
CREATE INDEX turn_docs_search ON turn_docs USING GIN (search);
CREATE INDEX turn_docs_by_ts ON turn_docs(ts);
CREATE TABLE turn_cursors (agent TEXT PRIMARY KEY, event_id BIGINT NOT NULL);
"""

# budgets (`budgets.py`) and tool permission requests with kept rules (`permissions.py`); the
# kept rules' order is their insertion order (`seq`, as sqlite's rowid)
M0004_PERMISSIONS_BUDGETS = f"""
CREATE TABLE budget_usage (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    agent TEXT NOT NULL,
    at {TS} NOT NULL,
    model TEXT NOT NULL DEFAULT '',
    tokens BIGINT NOT NULL DEFAULT 0,
    cost_usd DOUBLE PRECISION NOT NULL DEFAULT 0
);
CREATE INDEX budget_usage_by_agent ON budget_usage(agent, at);
CREATE INDEX budget_usage_by_at ON budget_usage(at);
CREATE TABLE budget_trips (
    agent TEXT PRIMARY KEY,
    key TEXT NOT NULL,
    reason TEXT NOT NULL,
    tripped_at {TS} NOT NULL,
    raise_by DOUBLE PRECISION NOT NULL DEFAULT 0,
    question_id BIGINT
);
CREATE TABLE budget_raises (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    agent TEXT NOT NULL,
    key TEXT NOT NULL,
    amount DOUBLE PRECISION NOT NULL,
    until {TS} NOT NULL
);
CREATE INDEX budget_raises_by_agent ON budget_raises(agent, until);
CREATE TABLE permission_requests (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    agent TEXT NOT NULL,
    generation BIGINT NOT NULL DEFAULT 0,
    harness TEXT NOT NULL,
    key TEXT NOT NULL,
    tool TEXT NOT NULL,
    input_json TEXT NOT NULL,
    tool_use_id TEXT,
    reason TEXT,
    rule TEXT,
    asked_at {TS} NOT NULL,
    deadline_at {TS} NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    decided_at {TS},
    note TEXT NOT NULL DEFAULT '',
    kept_rule TEXT
);
CREATE UNIQUE INDEX permission_requests_key ON permission_requests(agent, key);
CREATE INDEX permission_requests_pending ON permission_requests(agent, id)
    WHERE status = 'pending';
CREATE TABLE permission_rules (
    seq BIGINT GENERATED ALWAYS AS IDENTITY,
    agent TEXT NOT NULL,
    generation BIGINT NOT NULL,
    rule TEXT NOT NULL,
    kept_at {TS} NOT NULL,
    PRIMARY KEY (agent, generation, rule)
);
"""

# config repos across nodes (`core/confighandoff.py`): which node acts on each approval, the
# pinned commit as a git bundle for it, and each repo made away from the manager's node
M0005_CONFIG_HANDOFFS = f"""
CREATE TABLE config_handoffs (
    approval_id BIGINT PRIMARY KEY,
    agent TEXT NOT NULL,
    kind TEXT NOT NULL,
    node TEXT NOT NULL,
    origin TEXT NOT NULL,
    sha TEXT,
    bundle BYTEA,
    state TEXT NOT NULL DEFAULT 'waiting'
        CHECK (state IN ('waiting', 'applied', 'superseded', 'failed', 'dropped')),
    created_at {TS} NOT NULL,
    done_at {TS}
);
CREATE INDEX config_handoffs_waiting ON config_handoffs(node, approval_id)
    WHERE state = 'waiting';
CREATE INDEX config_handoffs_by_agent ON config_handoffs(agent, approval_id);
CREATE TABLE config_mirrors (
    agent TEXT PRIMARY KEY,
    node TEXT NOT NULL,
    sha TEXT NOT NULL,
    bundle BYTEA NOT NULL,
    stored_at {TS} NOT NULL
);
"""

MIGRATIONS: list[tuple[str, str]] = [
    ("0001_schema", M0001),
    ("0002_search", M0002_SEARCH),
    ("0003_trace_parent", M0003_TRACE_PARENT),
    ("0004_permissions_budgets", M0004_PERMISSIONS_BUDGETS),
    ("0005_config_handoffs", M0005_CONFIG_HANDOFFS),
]


async def migrate(conn: psycopg.AsyncConnection[Any]) -> list[str]:
    """Apply the missing migrations (in the caller's transaction); the names applied."""
    await conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " name TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
    )
    cur = await conn.execute("SELECT name FROM schema_migrations")
    done = {r["name"] if isinstance(r, dict) else r[0] for r in await cur.fetchall()}
    applied = []
    for name, sql in MIGRATIONS:
        if name in done:
            continue
        await conn.execute(sql.encode())
        await conn.execute("INSERT INTO schema_migrations(name) VALUES (%s)", (name,))
        applied.append(name)
    return applied
