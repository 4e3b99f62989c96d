"""`hive db export FILE` / `hive db import FILE` / `hive db migrate --to URL`: move a hive's data
between storage backends (`hyperhive.core.store.transfer`).

Each opens the storage directly (no daemon): `--db URL` (default: `HIVE_DATABASE_URL`, else
`[database] url` in hive.toml, else the sqlite file in the home). Stop the daemon first so the
export is one consistent snapshot and the import target stays empty; then point the daemon at
the new database (`hive serve --db URL` or `[database] url`).
"""

from __future__ import annotations

from pathlib import Path

import click

from hyperhive.cli.common import Ctx, emit, json_option, pass_ctx, run
from hyperhive.config import load_config
from hyperhive.core.store.backend import database_url, open_storage, redact
from hyperhive.core.store.transfer import export_storage, import_storage

_DB_HELP = (
    "Storage URL [default: HIVE_DATABASE_URL, else [database] url in hive.toml, else the "
    "sqlite file in the hive home]."
)


def _url(ctx: Ctx, flag: str | None) -> str:
    return database_url(flag, load_config(ctx.paths.config_file).database.url)


def _human(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {t}" for t, n in counts.items())


@click.group()
def db() -> None:
    """Export, import and migrate the hive's data (sqlite ⇄ PostgreSQL)."""


@db.command("export")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--db", "db_url", metavar="URL", default=None, help=_DB_HELP)
@json_option
@pass_ctx
def export_cmd(ctx: Ctx, file: Path, db_url: str | None, as_json: bool) -> None:
    """Write every message, agent, question, reminder and approval to FILE (JSON, 0600)."""

    async def go() -> dict[str, int]:
        async with open_storage(_url(ctx, db_url), ctx.paths.db_file) as storage:
            return await export_storage(storage, file)

    counts = run(go())
    emit(counts, as_json, lambda c: f"exported {_human(c)} to {file}")


@db.command("import")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--db", "db_url", metavar="URL", default=None, help=_DB_HELP)
@json_option
@pass_ctx
def import_cmd(ctx: Ctx, file: Path, db_url: str | None, as_json: bool) -> None:
    """Load FILE (from `hive db export`) into an empty database, all or nothing."""
    url = _url(ctx, db_url)

    async def go() -> dict[str, int]:
        async with open_storage(url, ctx.paths.db_file) as storage:
            return await import_storage(storage, file)

    counts = run(go())
    emit(counts, as_json, lambda c: f"imported {_human(c)} into {redact(url) or 'sqlite'}")


@db.command("migrate")
@click.option("--to", "to_url", metavar="URL", required=True, help="The target database.")
@click.option("--db", "db_url", metavar="URL", default=None, help="The source. " + _DB_HELP)
@json_option
@pass_ctx
def migrate_cmd(ctx: Ctx, to_url: str, db_url: str | None, as_json: bool) -> None:
    """Copy the hive's data into the empty database at --to (then serve with --db URL)."""
    from hyperhive.core.store.transfer import dump, load

    async def go() -> dict[str, int]:
        async with open_storage(_url(ctx, db_url), ctx.paths.db_file) as src:
            doc = await dump(src)
        async with open_storage(to_url, ctx.paths.db_file) as dst:
            return await load(dst, doc)

    counts = run(go())
    emit(counts, as_json, lambda c: f"copied {_human(c)} to {redact(to_url)}")


COMMANDS = [db]
