"""SQLite access with exactly one writer.

Invariants:
- One write connection, owned by one asyncio task (`hive-db-writer`). Every write is a function
  `fn(conn)` queued to it; the task runs everything queued since its last pass in ONE
  transaction (group commit). If any of them raises, that transaction is rolled back and each
  function runs again in its own transaction, so a failing function gets its exception while
  the others commit. Hence a write function may run twice: it must have no effect outside the
  connection (build its result, don't append to outside state). A write's future resolves only
  after COMMIT, so an acknowledged write is durable against a process crash (WAL,
  synchronous=NORMAL). A write may carry an `on_commit(value)` hook: it runs synchronously
  right after COMMIT, before any other task can run (a read included), and runs even if the
  writer's caller was cancelled meanwhile, so in-memory state kept in step with the database
  (the broker's unread index) can never miss or pre-empt a commit.
- Reads run on a separate read-only connection and never write (WAL lets them see the last
  commit while the writer works).
- Statements are short (indexed lookups, small batches): running them on the event loop thread
  costs tens of microseconds and avoids thread hand-offs, which under the GIL cost milliseconds
  each. Anything that could be long (retention sweeps) deletes in bounded chunks.
- Migrations are ordered, named functions recorded in `schema_migrations`; they run on open,
  before anything else.
- The WAL stays bounded. Checkpoints run on their own connection in a thread, never on the
  writer: each tick that saw commits copies the WAL back (PASSIVE, blocks nobody); when a tick
  saw no commits (idle) or the WAL file passed `wal_limit_bytes`, a TRUNCATE checkpoint
  follows, which resets the file to zero bytes. That one briefly holds the write lock, so it
  comes right after a PASSIVE pass (little left to copy) and gives up after
  `CHECKPOINT_BUSY_MS` if a reader is in the way (the next tick tries again).
  `journal_size_limit` also cuts the file back whenever SQLite restarts the WAL.
- The writer and checkpoint tasks are owned (and closed) here but watched by the daemon's
  `Supervisor` when one is given: a writer that dies fails every pending and later write with
  `Unavailable` (none hangs) and stops the daemon. The checkpoint connection is opened before
  `open` returns and closed only after its task has finished (a stop, never a cancel mid-call),
  so no connection outlives `aclose` (a late one would re-create the `-shm` a foreign reader
  must not see). No cursor leaves its thread unfinished either: a live cursor's statement
  turns `close()` into a zombie connection that keeps the files (and the `-shm`) open.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar

from hyperhive import safefs
from hyperhive.errors import Unavailable

logger = logging.getLogger(__name__)


class TaskWatcher(Protocol):
    """What the database needs of the daemon's supervisor (`hyperhive.core.tasks.Supervisor`)."""

    def watch(self, task: asyncio.Task[Any], *, critical: bool = True) -> None: ...


T = TypeVar("T")


@dataclass(frozen=True)
class Migration:
    name: str
    apply: Callable[[sqlite3.Connection], None]


def _connect(path: Path, *, readonly: bool) -> sqlite3.Connection:
    if readonly:
        conn = sqlite3.connect(
            f"file:{path}?mode=ro", uri=True, check_same_thread=False, isolation_level=None
        )
    else:
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA busy_timeout = 5000")
    if not readonly:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
    return conn


OPEN_TRIES = 6
CHECKPOINT_INTERVAL = 1.0  # seconds between checkpoint ticks
WAL_LIMIT_BYTES = 64 * 1024 * 1024  # past this, the WAL is truncated even under load
CHECKPOINT_BUSY_MS = 50  # how long a TRUNCATE checkpoint waits for a reader before retrying


def wal_path(path: Path) -> Path:
    return path.with_name(path.name + "-wal")


def wal_size(path: Path) -> int:
    """Bytes in the database's WAL file (0 when there is none)."""
    try:
        return wal_path(path).stat().st_size
    except FileNotFoundError:
        return 0


def _checkpoint(conn: sqlite3.Connection, mode: str) -> bool:
    """A `mode` checkpoint; True when it completed (not blocked by a reader or writer).

    The cursor is drained and closed here, on the checkpoint thread: a cursor handed back
    unfinished (as `to_thread(conn.execute, ...)` did) is kept alive by the executor future's
    reference cycle until a garbage collection, and while it lives `conn.close()` leaves a
    zombie connection holding the database, its `-wal` and `-shm` open, so they outlived
    `aclose` (and a later last close could not delete them)."""
    cur = conn.execute(f"PRAGMA wal_checkpoint({mode})")
    try:
        rows = cur.fetchall()
    finally:
        cur.close()
    return bool(rows) and rows[0][0] == 0


def _truncate_wal(conn: sqlite3.Connection) -> bool:
    """A TRUNCATE checkpoint; True when it completed (the WAL file is now empty)."""
    return _checkpoint(conn, "TRUNCATE")


def _readonly(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    return bool(code == sqlite3.SQLITE_READONLY or "readonly database" in str(exc))


FOREIGN_MAX_BYTES = 512 * 1024 * 1024
FOREIGN_TRIES = 5


# An agent's store is untrusted input: schema objects (views, triggers) may call no function
# with side effects, and malformed b-tree cells are caught rather than trusted.
UNTRUSTED_PRAGMAS = ("PRAGMA trusted_schema = OFF", "PRAGMA cell_size_check = ON")


def harden(conn: sqlite3.Connection) -> sqlite3.Connection:
    """Settings for reading a database an agent wrote (sqlite's advice for untrusted files)."""
    for pragma in UNTRUSTED_PRAGMAS:
        conn.execute(pragma)
    return conn


def _wal_salt(root: Path, wal: str) -> bytes | None:
    head = safefs.read_bytes(root, wal, 32)
    return head[16:24] if head and len(head) >= 24 else None


def connect_foreign_ro(path: Path) -> sqlite3.Connection:
    """A private, in-memory snapshot of another process's database (an agent's store, read by
    the core or the CLI as root). The agent owns the directory: the file, its `-wal` and `-shm`
    may be links to root's files, and sqlite opens by path, follows links and writes the -shm
    even of a read-only connection. So sqlite never opens the agent's files: the main file and
    its `-wal` are copied through `O_NOFOLLOW` fds (regular files only) into a temp dir of
    ours, read from there, and backed up into memory. The WAL is copied after the main file,
    and the copy retried when the WAL restarted meanwhile (its salt changed), so checkpointed
    frames are never lost; a torn last frame fails its checksum and is ignored by sqlite.
    `path.parent` must be a directory the agent cannot replace (its parent is the core's)."""
    import tempfile  # not at import: the harness's start path imports this module

    root, name = path.parent, path.name
    for attempt in range(FOREIGN_TRIES):
        with tempfile.TemporaryDirectory(prefix="hh-ro-") as tmp:
            copy = Path(tmp) / "db.sqlite"
            salt = _wal_salt(root, name + "-wal")
            if not safefs.copy_out(root, name, copy, FOREIGN_MAX_BYTES):
                raise sqlite3.OperationalError(f"unable to open database file: {path}")
            safefs.copy_out(root, name + "-wal", Path(tmp) / "db.sqlite-wal", FOREIGN_MAX_BYTES)
            if _wal_salt(root, name + "-wal") != salt and attempt < FOREIGN_TRIES - 1:
                continue
            src = harden(sqlite3.connect(copy))
            try:
                mem = harden(sqlite3.connect(":memory:", check_same_thread=False))
                src.backup(mem)
            finally:
                src.close()
        mem.row_factory = sqlite3.Row
        return mem
    raise AssertionError("unreachable")


def execute_script(conn: sqlite3.Connection, sql: str) -> None:
    """Run `;`-separated statements inside the current transaction (unlike `executescript`,
    which commits first). Statements must not contain `;` inside literals or triggers."""
    for stmt in sql.split(";"):
        if stmt.strip():
            conn.execute(stmt)


def run_migrations(conn: sqlite3.Connection, migrations: Sequence[Migration]) -> list[str]:
    """Apply the migrations not yet recorded, in order. Returns the names applied."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " name TEXT PRIMARY KEY, applied_at TEXT NOT NULL DEFAULT (datetime('now')))"
    )
    done = {r[0] for r in conn.execute("SELECT name FROM schema_migrations")}
    applied = []
    for mig in migrations:
        if mig.name in done:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            mig.apply(conn)
            conn.execute("INSERT INTO schema_migrations(name) VALUES (?)", (mig.name,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        applied.append(mig.name)
    return applied


OnCommit = Callable[[Any], None]
_Job = tuple[Callable[[sqlite3.Connection], Any], asyncio.Future[Any], OnCommit | None]


class Database:
    """An sqlite database with one writer task and a read connection. Async context manager."""

    def __init__(
        self,
        path: Path,
        migrations: Sequence[Migration] = (),
        *,
        checkpoint_interval: float = CHECKPOINT_INTERVAL,
        wal_limit_bytes: int = WAL_LIMIT_BYTES,
        tasks: TaskWatcher | None = None,
    ) -> None:
        self.path = path
        self.checkpoint_interval = checkpoint_interval
        self.wal_limit_bytes = wal_limit_bytes
        self._migrations = list(migrations)
        self._tasks = tasks
        self._pending: list[_Job] = []
        self._wake = asyncio.Event()
        self._stop_checkpoints = asyncio.Event()
        self._cconn: sqlite3.Connection | None = None
        self._dead: BaseException | None = None
        self._writer_task: asyncio.Task[None] | None = None
        self._checkpoint_task: asyncio.Task[None] | None = None
        self._commits = 0
        self._wconn: sqlite3.Connection | None = None
        self._rconn: sqlite3.Connection | None = None
        self._closed = False
        self.applied_migrations: list[str] = []

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for attempt in range(OPEN_TRIES):
            conn = _connect(self.path, readonly=False)
            try:
                self.applied_migrations = run_migrations(conn, self._migrations)
            except sqlite3.OperationalError as exc:
                conn.close()
                if not _readonly(exc) or attempt == OPEN_TRIES - 1:
                    raise
                # another process running as root (a host-side reader of an agent's store)
                # created the -shm an instant ago and hands it to the file's owner next:
                # open again once it has
                await asyncio.sleep(0.02 * 2**attempt)
                continue
            self._wconn = conn
            break
        self._rconn = _connect(self.path, readonly=True)
        # checkpoints happen off the event loop, on their own connection and thread, so a
        # commit never stalls on copying the WAL back into the database file
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        conn.execute(f"PRAGMA journal_size_limit = {int(self.wal_limit_bytes)}")
        self._cconn = await asyncio.to_thread(self._checkpoint_connection)
        self._writer_task = asyncio.create_task(self._writer_main(), name="hive-db-writer")
        self._checkpoint_task = asyncio.create_task(
            self._checkpoint_main(self._cconn), name="hive-db-checkpoint"
        )
        if self._tasks is not None:
            self._tasks.watch(self._writer_task)
            self._tasks.watch(self._checkpoint_task)
        if self.applied_migrations:
            logger.info(
                "migrated %s: %s",
                self.path.name,
                ", ".join(self.applied_migrations),
                extra={"action": "db_migrate"},
            )

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._checkpoint_task is not None:
            # a stop, not a cancel: a checkpoint running on its thread finishes first, and
            # only then is its connection closed
            self._stop_checkpoints.set()
            await asyncio.gather(self._checkpoint_task, return_exceptions=True)
        if self._writer_task is not None:
            self._wake.set()
            # finishes what is queued, then exits (its error, if it died, is the supervisor's)
            await asyncio.gather(self._writer_task, return_exceptions=True)
        for conn in (self._rconn, self._wconn, self._cconn):
            if conn is not None:
                conn.close()
        self._rconn = self._wconn = self._cconn = None

    # -- checkpoints --------------------------------------------------------------------------

    def _checkpoint_connection(self) -> sqlite3.Connection:
        conn = _connect(self.path, readonly=False)
        conn.execute(f"PRAGMA busy_timeout = {CHECKPOINT_BUSY_MS}")
        conn.execute(f"PRAGMA journal_size_limit = {int(self.wal_limit_bytes)}")
        return conn

    async def _checkpoint_main(self, conn: sqlite3.Connection) -> None:
        seen = 0
        while not self._stop_checkpoints.is_set():
            try:
                await asyncio.wait_for(self._stop_checkpoints.wait(), self.checkpoint_interval)
            except TimeoutError:
                pass
            commits = self._commits
            try:
                await self._checkpoint_tick(conn, busy=commits != seen)
            except sqlite3.OperationalError as exc:  # a busy moment: the next tick retries
                logger.warning(
                    "checkpoint of %s failed: %s",
                    self.path.name,
                    exc,
                    extra={"action": "db_checkpoint_failed"},
                )
                continue
            seen = commits

    async def _checkpoint_tick(self, conn: sqlite3.Connection, *, busy: bool) -> None:
        """The checkpoint policy (module docstring): PASSIVE after commits, TRUNCATE when
        idle with a WAL left or when the WAL passed its limit."""
        if busy:
            await asyncio.to_thread(_checkpoint, conn, "PASSIVE")
        size = wal_size(self.path)
        if (not busy and size > 0) or size > self.wal_limit_bytes:
            done = await asyncio.to_thread(_truncate_wal, conn)
            logger.debug(
                "WAL of %s %s at %d bytes",
                self.path.name,
                "truncated" if done else "not truncated (busy)",
                size,
                extra={"action": "db_wal_truncate", "wal_bytes": size, "done": done},
            )

    # -- writer -------------------------------------------------------------------------------

    async def _writer_main(self) -> None:
        try:
            await self._write_loop()
        except BaseException as exc:
            # the connection broke (or the task was cancelled from outside): no write may
            # wait for a writer that is gone
            self._dead = exc
            self._fail_pending(exc)
            if not isinstance(exc, asyncio.CancelledError):
                logger.error(
                    "database writer of %s died: %r",
                    self.path.name,
                    exc,
                    extra={"action": "db_writer_died"},
                )
            raise

    def _fail_pending(self, cause: BaseException) -> None:
        pending, self._pending = self._pending, []
        for _, fut, _ in pending:
            if not fut.done():
                err = Unavailable(f"database writer of {self.path.name} died: {cause!r}")
                err.__cause__ = cause
                fut.set_exception(err)

    async def _write_loop(self) -> None:
        assert self._wconn is not None
        while True:
            await self._wake.wait()
            # one more loop pass before committing: writes queued by the callbacks that are
            # ready right now (other connections' requests) join this transaction
            await asyncio.sleep(0)
            self._wake.clear()
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    self._run_batch(self._wconn, batch)
                except BaseException:
                    self._pending = batch + self._pending  # failed below, with the rest
                    raise
                self._commits += 1
            if self._closed:
                return

    def _run_batch(self, conn: sqlite3.Connection, jobs: list[_Job]) -> None:
        results: list[tuple[_Job, bool, Any]] = []
        if len(jobs) > 1:  # optimistic: the whole batch as one transaction
            try:
                conn.execute("BEGIN IMMEDIATE")
                values = [job[0](conn) for job in jobs]
                conn.execute("COMMIT")
            except Exception:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            else:
                results = [(job, True, value) for job, value in zip(jobs, values, strict=True)]
        if not results:  # one job, or a batch where something failed: each job on its own
            results = [self._run_one(conn, job) for job in jobs]
        for (_, _, on_commit), ok, value in results:
            if ok and on_commit is not None:
                try:
                    on_commit(value)
                except Exception:
                    logger.exception("on_commit hook failed", extra={"action": "db_on_commit"})
        for (_, fut, _), ok, value in results:
            if fut.cancelled():
                continue
            if ok:
                fut.set_result(value)
            else:
                fut.set_exception(value)

    @staticmethod
    def _run_one(conn: sqlite3.Connection, job: _Job) -> tuple[_Job, bool, Any]:
        try:
            conn.execute("BEGIN IMMEDIATE")
            value = job[0](conn)
            conn.execute("COMMIT")
        except Exception as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.OperationalError):  # the database's fault, not the job's
                logger.error("write failed: %s", exc, extra={"action": "db_write_failed"})
            return job, False, exc
        return job, True, value

    async def write(
        self,
        fn: Callable[[sqlite3.Connection], T],
        *,
        on_commit: Callable[[T], None] | None = None,
    ) -> T:
        """Run `fn(conn)` on the writer inside a transaction; resolves after COMMIT.
        `on_commit(value)` runs synchronously right after a successful COMMIT."""
        if self._closed:
            raise Unavailable("database is closed")
        if self._dead is not None:
            raise Unavailable(f"database writer of {self.path.name} died: {self._dead!r}")
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._pending.append((fn, fut, on_commit))
        self._wake.set()
        # shield: a cancelled caller must not un-know a write that will still commit
        return await asyncio.shield(fut)

    # -- reads --------------------------------------------------------------------------------

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(conn)` on the read-only connection."""
        if self._closed or self._rconn is None:
            raise Unavailable("database is closed")
        return fn(self._rconn)

    def schema(self) -> list[tuple[str, str]]:
        """(name, sql) of every table and index, for the fresh-vs-migrated schema test."""
        conn = _connect(self.path, readonly=True)
        try:
            rows = conn.execute(
                "SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name"
            ).fetchall()
            return [(r[0], r[1]) for r in rows]
        finally:
            conn.close()
