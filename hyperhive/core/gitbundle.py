"""Git bundles of config repos: how a config commit travels between the nodes of one hive
(docs/multihost.md, "Config repos across nodes"), through the shared database.

- `create_bundle(repo, refs)`: the full history behind core-made refs (`refs/tags/proposal/<id>`,
  `refs/heads/main`, `refs/tags/seed`) as one self-contained bundle (no prerequisites: the
  receiving repo may share nothing with this one), refused over `MAX_BUNDLE_BYTES`.
- `bundle_heads(data)`: the refs a bundle claims, read with `git bundle list-heads` (no repo).
- `unbundle(repo, data, want)`: checks that the bundle holds ref `want` AT the expected sha
  BEFORE anything is written, then `git bundle unbundle` adds its objects to the repo (objects
  only: no ref, branch or work tree of the repo changes), and the commit must then resolve in
  the repo. Git names objects by the hash of their content, so a commit that resolves to the
  pinned id is the pinned commit.
- `repo_from_bundle(repo, data, head)`: a new repo (built beside its place and renamed in, as
  `GitRepo.init_with` does) whose `main` and `seed` come from the bundle, with its work tree
  written from the head commit's validated tree (`write_tree`: no links followed, none made)
  and its index read from that commit, so the manager sees a clean checkout.

Everything runs through `GitRepo.run` (the hardened git of `gitrepo.py`); bundle bytes go
through a private temp file under `home/run/bundles/` (0600, removed at once), never a path an
agent can write.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from hyperhive.core.gitrepo import (
    BRANCH,
    FULL_SHA_RE,
    GitError,
    GitRepo,
    _write_loose_ref,
    write_tree,
)

MAX_BUNDLE_BYTES = 32 << 20  # a config repo is text; a bigger one is refused, not shipped
_ALLOWED_REF_PREFIXES = ("refs/tags/proposal/", "refs/heads/main", "refs/tags/seed")


def _check_ref(ref: str) -> str:
    if not any(
        ref == p or (p.endswith("/") and ref.startswith(p) and ref[len(p) :].isdigit())
        for p in _ALLOWED_REF_PREFIXES
    ):
        raise ValueError(f"refusing ref {ref!r} for a bundle")
    return ref


@contextlib.asynccontextmanager
async def _temp_file(home: Path, data: bytes | None = None) -> AsyncIterator[Path]:
    """A private file under `home/run/bundles/` (created 0600), removed on exit."""
    root = home / "run" / "bundles"
    root.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=root, suffix=".bundle")
    try:
        with os.fdopen(fd, "wb") as fh:
            if data is not None:
                fh.write(data)
        yield Path(name)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)


async def create_bundle(repo: GitRepo, refs: Sequence[str]) -> bytes:
    """The complete history behind `refs` of `repo` as bundle bytes."""
    for ref in refs:
        _check_ref(ref)
    async with _temp_file(repo.home) as path:
        os.unlink(path)  # git writes it anew (it refuses to overwrite through a lock)
        await repo.run("bundle", "create", "-q", str(path), *refs)
        size = path.stat().st_size
        if size > MAX_BUNDLE_BYTES:
            raise GitError(
                f"{repo.label} is {size >> 20} MiB as a bundle; the limit is "
                f"{MAX_BUNDLE_BYTES >> 20} MiB"
            )
        return path.read_bytes()


async def bundle_heads(home: Path, data: bytes) -> dict[str, str]:
    """ref → sha, as the bundle claims them."""
    if len(data) > MAX_BUNDLE_BYTES:
        raise GitError("the bundle is over the size limit")
    probe = GitRepo(home, home=home)  # `list-heads` needs no repo (run with require=False)
    async with _temp_file(home, data) as path:
        _, out = await probe.run("bundle", "list-heads", str(path), require=False)
    heads: dict[str, str] = {}
    for line in out.decode("utf-8", "replace").splitlines():
        sha, _, ref = line.strip().partition(" ")
        if FULL_SHA_RE.match(sha) and ref:
            heads[ref] = sha
    return heads


async def _verified(home: Path, data: bytes, want: dict[str, str]) -> None:
    heads = await bundle_heads(home, data)
    for ref, sha in want.items():
        if heads.get(ref) != sha:
            raise GitError(f"the bundle's {ref} is {heads.get(ref, 'missing')}, not {sha}: refused")


async def unbundle(repo: GitRepo, data: bytes, want: dict[str, str]) -> None:
    """Add the bundle's objects to `repo` once it is checked to hold `want` (ref → sha)."""
    await _verified(repo.home, data, want)
    async with _temp_file(repo.home, data) as path:
        await repo.run("bundle", "unbundle", str(path))
    for sha in want.values():
        if not await repo.has_commit(sha):
            raise GitError(f"commit {sha} is not in the bundle's objects: refused")


async def repo_from_bundle(
    repo: GitRepo, data: bytes, want: dict[str, str], owner: tuple[int, int] | None = None
) -> None:
    """Create `repo` (it must not exist) from the bundle: `main` at the first sha of `want`,
    every ref of `want` set, the work tree and index at that commit."""
    if repo.path.exists() or repo.path.is_symlink():
        raise GitError(f"{repo.path} already exists")
    head = next(iter(want.values()))
    repo.path.parent.mkdir(parents=True, exist_ok=True)
    staging = repo.path.with_name(f".{repo.path.name}.import-{os.getpid()}-{id(repo)}")
    tmp = GitRepo(staging, home=repo.home, label=repo.label)
    try:
        staging.mkdir()
        skeleton = await tmp._skeleton()
        await asyncio.to_thread(shutil.copytree, skeleton, staging / ".git", symlinks=True)
        await unbundle(tmp, data, want)
        items = await tmp.read_tree(head)  # validated: no links, no escaping paths
        write_tree(staging, items)
        _write_loose_ref(staging / ".git" / "refs" / "heads" / BRANCH, head)
        for ref, sha in want.items():
            if ref != f"refs/heads/{BRANCH}":
                _write_loose_ref(staging / ".git" / ref, sha)
        work = {"GIT_WORK_TREE": str(staging)}
        await tmp.run("read-tree", "--end-of-options", head, env=work)
        await tmp.run("update-index", "-q", "--refresh", env=work, ok_codes=(0, 1))
        if owner is not None:
            await asyncio.to_thread(_chown_tree, staging, *owner)
        os.rename(staging, repo.path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _chown_tree(root: Path, uid: int, gid: int) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        for entry in (dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)):
            os.lchown(entry, uid, gid)
