"""A throwaway PostgreSQL cluster for the test session (real Debian `postgresql`, no service).

`PgCluster` runs `initdb` in a short temp dir and `pg_ctl start` there, as an unprivileged
user when we are root (initdb refuses root: `setpriv` to `nobody`, who owns the data dir). It
listens on a unix socket in that dir and on 127.0.0.1 at a free port, trusts local
connections, and `stop()` ends it with `pg_ctl stop -m fast` (its own postmaster pid, never a
name). `new_database()` gives each test a fresh database (`CREATE DATABASE ... TEMPLATE
template0`) and returns its URL; after the test the autouse `_drop_test_databases` drops every
database made during it, so the session's cluster stays small.

Where: a test cluster lives under `/dev/shm` when that is a tmpfs with room, else `/tmp`.
On this VM's ext4 (mounted with `discard`) every unlinked file costs ~1 ms, and a session
that kept its databases (hundreds, ~400 files each) took over pytest's 180 s to remove them
at the end once (issue #14). Durable clusters (benchmarks) always use `/tmp`: they measure a disk.

Fixtures: `pg_cluster` (session-scoped: one cluster per test run) and `pg_url` (a function
returning a new database URL each call). Register them with
`pytest_plugins = ["tests.support.postgres"]` or import them in a conftest.

Invariant: the cluster is stopped and its directory removed when the session ends, even after
a failing test; nothing outside its temp dir is touched.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

START_TIMEOUT = 120.0  # a hang guard, not a speed assertion (a loaded machine starts slowly)
SUPERUSER = "hive"
TMPFS = Path("/dev/shm")
TMPFS_ROOM = 2 << 30  # bytes free on the tmpfs before a test cluster goes there


def scratch_base(durable: bool) -> Path:
    """Where a cluster's directory goes: the tmpfs for a test cluster when there is one with
    room (module docstring), `/tmp` otherwise."""
    if not durable and _is_tmpfs(TMPFS):
        st = os.statvfs(TMPFS)
        if st.f_bavail * st.f_frsize >= TMPFS_ROOM and os.access(TMPFS, os.W_OK):
            return TMPFS
    return Path("/tmp")


def _is_tmpfs(path: Path) -> bool:
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return False
    return any(m.split()[1:3] == [str(path), "tmpfs"] for m in mounts)


def pg_bindir() -> Path:
    """The newest installed `/usr/lib/postgresql/<version>/bin` with initdb in it."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parent.parent.name.split(".")[0]),
    )
    if not found:
        raise RuntimeError("no PostgreSQL server found: run scripts/bootstrap.sh (apt postgresql)")
    return Path(found[-1]).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgCluster:
    def __init__(self, base: Path | None = None, *, durable: bool = False) -> None:
        """`durable`: fsync and synchronous commits as in production (benchmarks); tests
        run without them (faster; a test cluster never outlives a crash)."""
        self.durable = durable
        self.bindir = pg_bindir()
        self.root = Path(tempfile.mkdtemp(prefix="pg", dir=str(base or scratch_base(durable))))
        self.data = self.root / "d"
        self.sockdir = self.root  # the unix socket: ROOT/.s.PGSQL.PORT
        self.port = _free_port()
        self.log = self.root / "log"
        self._seq = itertools.count(1)
        self._made: list[str] = []  # databases new_database made and nobody dropped yet
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            self._as_user = [
                "setpriv",
                "--reuid=nobody",
                "--regid=nogroup",
                "--clear-groups",
                "--",
            ]
            os.chown(self.root, 65534, 65534)
        self.root.chmod(0o755)

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self._as_user, *args],
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT,
            cwd=self.root,
            env={**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"},
        )

    def _check(self, r: subprocess.CompletedProcess[str], what: str) -> None:
        if r.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{what} failed ({r.returncode}): {r.stderr}{r.stdout}\n{log}")

    def init(self) -> None:
        r = self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--no-instructions",
        )
        self._check(r, "initdb")
        conf = self.data / "postgresql.conf"
        with open(conf, "a", encoding="utf-8") as f:
            f.write(
                f"\nlisten_addresses = '127.0.0.1'\nport = {self.port}\n"
                f"unix_socket_directories = '{self.sockdir}'\n"
                "max_connections = 200\nshared_buffers = 32MB\n"
            )
            if not self.durable:
                f.write("fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n")

    def start(self) -> None:
        r = self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-w",
            "-t",
            str(int(START_TIMEOUT)),
            "start",
        )
        self._check(r, "pg_ctl start")

    def stop(self) -> None:
        """`pg_ctl stop -m fast` of this cluster (its postmaster.pid); no-op if not running."""
        if not (self.data / "postmaster.pid").exists():
            return
        r = self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
        self._check(r, "pg_ctl stop")

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            r = self._run(
                str(self.bindir / "pg_isready"), "-h", str(self.sockdir), "-p", str(self.port)
            )
            if r.returncode == 0:
                return
            time.sleep(0.05)
        raise TimeoutError("the test PostgreSQL cluster did not become ready")

    def url(self, dbname: str = "postgres", *, tcp: bool = False) -> str:
        if tcp:
            return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"
        return f"postgresql://{SUPERUSER}@/{dbname}?host={self.sockdir}&port={self.port}"

    def sql(self, statement: str, dbname: str = "postgres") -> str:
        r = subprocess.run(
            [
                str(self.bindir / "psql"),
                "-X",
                "-q",
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                str(self.sockdir),
                "-p",
                str(self.port),
                "-U",
                SUPERUSER,
                "-d",
                dbname,
                "-c",
                statement,
            ],
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT,
        )
        if r.returncode != 0:
            raise RuntimeError(f"psql {statement!r}: {r.stderr}")
        return r.stdout

    def new_database(self, *, tcp: bool = False) -> str:
        name = f"t{os.getpid()}_{next(self._seq)}"
        self.sql(f'CREATE DATABASE "{name}" TEMPLATE template0')
        self._made.append(name)
        return self.url(name, tcp=tcp)

    def drop_new_databases(self) -> None:
        """Drop every database `new_database` made since the last call, cutting whatever is
        still connected to them (a test's leftover client must not keep its files alive)."""
        while self._made:
            name = self._made.pop()
            self.sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def terminate_backends(self, dbname: str | None = None) -> None:
        """Cut every client connection (the database "goes away" for its clients)."""
        where = f"datname = '{dbname}'" if dbname else "datname IS NOT NULL"
        self.sql(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            f" WHERE {where} AND pid <> pg_backend_pid()"
        )

    def __enter__(self) -> PgCluster:
        try:
            self.init()
            self.start()
            self.wait_ready()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


_session: list[PgCluster] = []  # the session's cluster, once a test has asked for it


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """One throwaway cluster for the whole test session."""
    with PgCluster() as cluster:
        _session.append(cluster)
        try:
            yield cluster
        finally:
            _session.remove(cluster)


@pytest.fixture(autouse=True)
def _drop_test_databases() -> Iterator[None]:
    """After each test, drop the databases it made in the session's cluster (autouse, so it
    is set up first and torn down last: after every hive and daemon of the test)."""
    yield
    for cluster in _session:
        cluster.drop_new_databases()


@pytest.fixture
def pg_url(pg_cluster: PgCluster) -> Callable[[], str]:
    """`pg_url()` → the URL of a new, empty database of the session's cluster."""
    return pg_cluster.new_database
