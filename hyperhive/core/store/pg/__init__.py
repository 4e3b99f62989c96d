"""The PostgreSQL backend: every store of `core/store/base.py` over psycopg 3 (async) and its
pool (`db.PgDb`), the schema in `migrations.py`, and `storage.PgStorage` (the stores plus the
LISTEN/NOTIFY wake-up channel). Opened by `core/store/backend.open_storage` for a
`postgresql://` URL."""
