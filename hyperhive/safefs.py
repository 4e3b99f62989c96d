"""Safe host-side file operations on paths an agent can write.

An agent (hostile, its own uid) can put symlinks, hard links, fifos, directories or garbage
anywhere it may write: its `/state`, its page directory, `/shared`, a manager's config repos.
The core runs as root, so any host-side touch of such a path that follows a link is a way for
the agent to reach past its sandbox (`ln -s /etc/shadow hyperhive-events.sqlite-shm`, then
wait for root to chown, write or read it). Every such touch goes through this module.

Invariants:
- A `root` passed here is a directory whose own path the agent cannot change (its parent is
  the core's); below it, every component is opened with `O_NOFOLLOW` relative to its parent's
  fd (`dir_fd` walks), so a link planted anywhere on the way is refused, never followed.
- Reads take regular files only (a fifo or device is refused without blocking), bounded.
- Removal never follows links (`shutil.rmtree` is fd-based here; a link is unlinked itself).
- `run_as(uid, ...)`: work that must open agent files by path with a library that follows
  links (sqlite) runs in a child process as the agent's own uid, chrooted into the agent's
  directory: a link there resolves inside it, and the child can reach nothing the agent
  could not (root never parses a file the agent crafted).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import subprocess

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
READ_LIMIT = 1 << 20


class UnsafePath(OSError):
    """A path below an agent-writable root was a link or not the expected kind of file."""


def _parts(rel: str | os.PathLike[str]) -> list[str]:
    parts = [p for p in Path(rel).parts if p not in ("", ".")]
    if not parts or any(p in ("..", "/") for p in parts) or Path(rel).is_absolute():
        raise UnsafePath(errno.EINVAL, f"not a relative path below the root: {rel!s}")
    return parts


@contextlib.contextmanager
def open_root(root: Path) -> Iterator[int]:
    """An fd of the directory `root` itself (refused when `root` is a symlink)."""
    fd = os.open(root, DIR_FLAGS)
    try:
        yield fd
    finally:
        os.close(fd)


def _walk_dirs(root_fd: int, parts: Sequence[str]) -> int:
    """A new fd of the directory `parts` below `root_fd`, no component followed if a link."""
    fd = os.dup(root_fd)
    try:
        for part in parts:
            nxt = os.open(part, DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = nxt
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_under(
    root: Path, rel: str | os.PathLike[str], flags: int = os.O_RDONLY, mode: int = 0o600
) -> int:
    """Open `root/rel` without following a link at any component below `root`. Returns an fd
    (the caller closes it). `O_NOFOLLOW | O_CLOEXEC` are always added; an `O_RDONLY` open also
    gets `O_NONBLOCK`, so a fifo planted there cannot block the core."""
    parts = _parts(rel)
    flags |= os.O_NOFOLLOW | os.O_CLOEXEC
    if flags & os.O_ACCMODE == os.O_RDONLY:
        flags |= os.O_NONBLOCK
    with open_root(root) as rfd:
        dfd = _walk_dirs(rfd, parts[:-1])
        try:
            return os.open(parts[-1], flags, mode, dir_fd=dfd)
        finally:
            os.close(dfd)


def lstat_under(root: Path, rel: str | os.PathLike[str]) -> os.stat_result | None:
    """`lstat` of `root/rel` (None when it, or a directory on the way, is missing or a link)."""
    parts = _parts(rel)
    try:
        with open_root(root) as rfd:
            dfd = _walk_dirs(rfd, parts[:-1])
            try:
                return os.stat(parts[-1], dir_fd=dfd, follow_symlinks=False)
            finally:
                os.close(dfd)
    except OSError:
        return None


def is_regular(root: Path, rel: str | os.PathLike[str]) -> bool:
    """True when `root/rel` is a regular file reached without links."""
    st = lstat_under(root, rel)
    return st is not None and stat.S_ISREG(st.st_mode)


def read_bytes(root: Path, rel: str | os.PathLike[str], limit: int = READ_LIMIT) -> bytes | None:
    """Up to `limit` bytes of the regular file `root/rel`; None when it is missing, a link,
    or not a regular file."""
    try:
        fd = open_under(root, rel)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        os.set_blocking(fd, True)
        chunks: list[bytes] = []
        left = limit
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 16))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_tail(root: Path, rel: str | os.PathLike[str], limit: int) -> bytes | None:
    """The last `limit` bytes of the regular file `root/rel` (None as `read_bytes`)."""
    try:
        fd = open_under(root, rel)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        os.set_blocking(fd, True)
        os.lseek(fd, max(0, st.st_size - limit), os.SEEK_SET)
        chunks: list[bytes] = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks)[-limit:]
    finally:
        os.close(fd)


def write_under(root: Path, rel: str | os.PathLike[str], data: bytes, mode: int = 0o644) -> None:
    """Atomically (re)place the file `root/rel` with `data`, creating missing directories on
    the way; no component is followed if a link (an fd walk: a directory swapped meanwhile
    only moves where inside the agent's own tree the write lands). New directories and the
    file get the owner of the directory they are made in (the agent keeps control of its
    tree). A directory in the file's place makes it fail."""
    parts = _parts(rel)
    with open_root(root) as rfd:
        fd = os.dup(rfd)
        try:
            for part in parts[:-1]:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=fd)
                    _give(fd, part)
                nxt = os.open(part, DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = nxt
            tmp = f".{parts[-1]}.hh-{os.urandom(4).hex()}"
            wfd = os.open(
                tmp,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                mode,
                dir_fd=fd,
            )
            try:
                with os.fdopen(wfd, "wb", closefd=False) as f:
                    f.write(data)
                owner = os.fstat(fd)
                if os.geteuid() == 0:
                    os.fchown(wfd, owner.st_uid, owner.st_gid)
            finally:
                os.close(wfd)
            try:
                os.rename(tmp, parts[-1], src_dir_fd=fd, dst_dir_fd=fd)
            except OSError:
                os.unlink(tmp, dir_fd=fd)
                raise
        finally:
            os.close(fd)


def _give(dir_fd: int, name: str) -> None:
    """Chown `name` (just made in `dir_fd`) to the directory's owner (root callers only)."""
    if os.geteuid() == 0:
        st = os.fstat(dir_fd)
        os.chown(name, st.st_uid, st.st_gid, dir_fd=dir_fd, follow_symlinks=False)


def copy_out(root: Path, rel: str | os.PathLike[str], dest: Path, limit: int) -> bool:
    """Copy the regular file `root/rel` (at most `limit` bytes) to `dest`, a path of the
    caller's own; False when it is missing, a link or not a regular file."""
    data = read_bytes(root, rel, limit)
    if data is None:
        return False
    dest.write_bytes(data)
    return True


def remove(path: Path) -> None:
    """Remove whatever is at `path` (file, socket, link or directory tree) without following
    a link; missing is fine. The parent of `path` must be the caller's (not agent-writable)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        import shutil  # not at import: the harness's start path imports this module

        # fd-based on Linux: a link planted inside is removed, never followed
        assert shutil.rmtree.avoids_symlink_attacks
        shutil.rmtree(path)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def own_dir(path: Path, uid: int, gid: int, mode: int) -> None:
    """Make `path` a real directory owned by uid:gid with `mode`: whatever else is there (a
    link, a file) is removed first. The parent must be the caller's. Root only for chown."""
    st = None
    with contextlib.suppress(FileNotFoundError):
        st = os.lstat(path)
    if st is not None and not stat.S_ISDIR(st.st_mode):
        remove(path)
        st = None
    if st is None:
        path.mkdir(mode=mode)
    fd = os.open(path, DIR_FLAGS)
    try:
        st = os.fstat(fd)
        if (st.st_uid, st.st_gid) != (uid, gid):
            os.fchown(fd, uid, gid)
        if stat.S_IMODE(st.st_mode) != mode:
            os.fchmod(fd, mode)
    finally:
        os.close(fd)


def prepare_socket(path: Path) -> None:
    """Make `path` free for `bind`: its directory exists and (for a root caller) belongs to
    root and is writable by root only, so no agent can remove or squat the socket later; and
    anything at `path` itself (a stale socket, or a directory or link an agent left in a
    directory it once owned) is removed without following. The grandparent must be ours."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        fd = os.open(path.parent, DIR_FLAGS)
        try:
            st = os.fstat(fd)
            if st.st_uid != 0:
                os.fchown(fd, 0, 0)
            if st.st_uid != 0 or st.st_mode & 0o022:
                os.fchmod(fd, stat.S_IMODE(st.st_mode) & ~0o022 | 0o700)
        finally:
            os.close(fd)
    remove(path)


def owner_of(path: Path) -> int | None:
    """The uid owning `path` itself (not a link's target); None when missing."""
    try:
        return os.lstat(path).st_uid
    except OSError:
        return None


# Runs as root only until `module` is imported (the interpreter may live where only root can
# read, e.g. under /root); then, before touching anything of the agent's: chroot into the
# agent's directory (sqlite makes paths absolute, and the host path above it may be closed to
# the agent), become the agent for good, and allow no further imports (after the chroot an
# import from a host path would read the agent's files; builtin and frozen modules only).
_RUN_AS_BOOT = """
import importlib, importlib.machinery, os, sys
fd, uid, name = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
module = importlib.import_module(name)
os.fchdir(fd)
os.close(fd)
os.chroot(".")
os.setgroups([])
os.setresgid(uid, uid, uid)
os.setresuid(uid, uid, uid)
os.chdir("/")
sys.path.clear()
sys.path_hooks.clear()
sys.path_importer_cache.clear()
keep = (importlib.machinery.BuiltinImporter, importlib.machinery.FrozenImporter)
sys.meta_path[:] = [f for f in sys.meta_path if f in keep]
module.child_main(sys.argv[4:])
"""


def run_as(
    uid: int, cwd_fd: int, module: str, args: Sequence[str], timeout: float
) -> subprocess.CompletedProcess[str]:
    """Run `module.child_main(args)` in a child process as `uid` (its own gid, no other
    groups), chrooted into the directory `cwd_fd` (its `/`, also its cwd). The child imports
    `module` first (as root: the interpreter may be readable by root only), then chroots and
    drops to `uid` for good; `child_main` must need no further imports and use relative (or
    `/`-rooted) paths. Output captured."""
    import subprocess

    return subprocess.run(
        [sys.executable, "-I", "-c", _RUN_AS_BOOT, str(cwd_fd), str(uid), module, *args],
        pass_fds=(cwd_fd,),
        cwd="/",
        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
