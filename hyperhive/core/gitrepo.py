"""A git repository driven by the `git` CLI in asyncio subprocesses, safe to point at a repo an
agent controls.

The core runs git as its own (often root) user inside config repos that the manager can write
(`/agents/<name>` in its sandbox). Everything here assumes the repo's contents and its
`.git/config` are hostile:

- Clean environment: no system or global config (`GIT_CONFIG_NOSYSTEM`, `GIT_CONFIG_GLOBAL=
  /dev/null`), `HOME` set, no pager, no prompts, no editor, `LC_ALL=C`. `GIT_DIR` is always
  given explicitly, and `.git` must be a real directory (not a symlink or a `gitdir:` file that
  could point anywhere on the host). Explicit `GIT_DIR` also means git's "dubious ownership"
  check (agent uids differ from the core's) does not apply; `safe.directory` is set anyway.
- Every command overrides the repo-config keys that run programs (`core.fsmonitor`,
  `core.hooksPath`, gpg signing, auto gc, ...), `diff` runs with `--no-ext-diff
  --no-textconv`, and files are extracted with `ls-tree` + `cat-file --batch` (no smudge
  filters, no `.gitattributes` effects), never `checkout` or `archive`.
- Refs and shas are never user input passed through: a sha must match `[0-9a-f]{7,40}` and
  resolve with `cat-file -e <sha>^{commit}` in THIS repo; tag and branch names come from
  `TAG_RE` / fixed strings built by the core; `--end-of-options` separates them anyway.
- Extraction refuses symlinks, submodules, absolute or `..` paths and oversized trees, so an
  applied config can never make the core read or write outside its directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
import stat
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from hyperhive import safefs
from hyperhive.errors import BadRequest, HiveError, NotFound, Unavailable

logger = logging.getLogger(__name__)

SHA_RE = re.compile(r"^[0-9a-f]{7,40}$")
FULL_SHA_RE = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")
TAG_RE = re.compile(r"^(?:proposal|deployed)/[0-9]{1,18}$|^seed$")
BRANCH = "main"
CORE_NAME = "hive-core"
CORE_EMAIL = "hive-core@hyperhive"
MAX_TREE_BYTES = 64 << 20  # an applied config is text, not a data set
MAX_TREE_FILES = 10_000
GIT_TIMEOUT = 60.0

# keys a hostile .git/config could use to make the core run a program
_HARDENING = (
    "core.fsmonitor=false",
    "core.hooksPath=/dev/null",
    "core.sshCommand=false",
    "core.askPass=",
    "core.pager=cat",
    "core.editor=false",
    "commit.gpgSign=false",
    "tag.gpgSign=false",
    "gc.auto=0",
    "maintenance.auto=false",
    "protocol.allow=never",
    "diff.external=",
    "credential.helper=",
)


class GitError(HiveError):
    """A git command failed (the message carries git's own reason)."""

    code = "git_error"


@dataclass(frozen=True)
class Identity:
    name: str
    email: str


CORE = Identity(CORE_NAME, CORE_EMAIL)


@dataclass(frozen=True)
class TreeFile:
    path: str  # relative, '/'-separated, validated
    mode: str  # 100644 | 100755
    blob: str


def check_sha(sha: str) -> str:
    """A lower-case hex commit id of 7-40 characters, or `BadRequest`."""
    if not isinstance(sha, str) or not SHA_RE.match(sha):
        shown = sha if isinstance(sha, str) and len(sha) <= 60 else "(long value)"
        raise BadRequest(
            f"{shown!r} is not a commit sha: give 7-40 lower-case hex digits "
            "(e.g. from `git rev-parse HEAD` in the agent's config repo)"
        )
    return sha


def _check_tag(tag: str) -> str:
    if not TAG_RE.match(tag):
        raise ValueError(f"refusing tag name {tag!r}")
    return tag


def _safe_relpath(raw: str) -> str:
    p = PurePosixPath(raw)
    if p.is_absolute() or not p.parts or any(part in ("", ".", "..") for part in p.parts):
        raise GitError(f"refusing path {raw!r} in the config tree")
    if p.parts[0] == ".git":
        raise GitError(f"refusing path {raw!r}: .git is not config")
    return str(p)


class GitRepo:
    """One repository: `path` is its work tree, `path/.git` its (non-bare) git dir."""

    def __init__(self, path: Path, *, home: Path, label: str | None = None) -> None:
        self.path = path
        self.git_dir = path / ".git"
        self.home = home
        self.label = label or f"the repo at {path}"  # for messages: "alice's config repo"

    # -- plumbing -----------------------------------------------------------------------------

    def exists(self) -> bool:
        try:
            st = os.lstat(self.git_dir)
        except FileNotFoundError:
            return False
        return stat.S_ISDIR(st.st_mode)

    def _require(self) -> None:
        try:
            st = os.lstat(self.git_dir)
        except FileNotFoundError:
            raise NotFound(f"there is no {self.label} yet") from None
        if not stat.S_ISDIR(st.st_mode):
            raise GitError(
                f"{self.git_dir} is not a directory (symlinks and gitdir files are refused)"
            )

    def _env(self, extra: Mapping[str, str] | None) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "LC_ALL": "C",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": "/dev/null",
            "GIT_DIR": str(self.git_dir),
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_PAGER": "cat",
            "GIT_EDITOR": "false",
            "GIT_OPTIONAL_LOCKS": "0",
            "GIT_NO_REPLACE_OBJECTS": "1",
        }
        if extra:
            env.update(extra)
        return env

    async def run(
        self,
        *args: str,
        stdin: bytes | None = None,
        env: Mapping[str, str] | None = None,
        ok_codes: Sequence[int] = (0,),
        require: bool = True,
    ) -> tuple[int, bytes]:
        """Run `git args...`; (exit code, stdout). A code outside `ok_codes` is a `GitError`."""
        if require:
            self._require()
        argv = ["git", "-c", f"safe.directory={self.path}"]
        for kv in _HARDENING:
            argv += ["-c", kv]
        argv += list(args)
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=self._env(env),
                cwd=str(self.home),
            )
        except FileNotFoundError as exc:
            raise Unavailable("the `git` command is not installed on the host") from exc
        try:
            out, err = await asyncio.wait_for(proc.communicate(stdin), GIT_TIMEOUT)
        except BaseException:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            raise
        code = proc.returncode
        assert code is not None
        if code not in ok_codes:
            reason = err.decode("utf-8", "replace").strip().splitlines()
            raise GitError(
                f"git {args[0] if args else ''} failed in {self.path}: "
                + (reason[-1] if reason else f"exit {code}")
            )
        return code, out

    async def _text(self, *args: str, env: Mapping[str, str] | None = None) -> str:
        _, out = await self.run(*args, env=env)
        return out.decode("utf-8", "replace").strip()

    # -- creation -----------------------------------------------------------------------------

    async def init_with(
        self, files: Mapping[str, str], message: str, author: Identity = CORE
    ) -> str:
        """Create the repo (its directory must not exist yet: it is built next to it and renamed
        into place) with one commit on `main` holding `files`; tags it `seed`. Returns the sha."""
        if self.path.exists() or self.path.is_symlink():
            raise GitError(f"{self.path} already exists")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        staging = self.path.with_name(f".{self.path.name}.new-{os.getpid()}-{id(self)}")
        repo = GitRepo(staging, home=self.home)
        try:
            staging.mkdir()
            # a copy of an empty repo `git init` made once per process: one git process less
            # on every agent's first spawn
            skeleton = await self._skeleton()
            await asyncio.to_thread(shutil.copytree, skeleton, staging / ".git", symlinks=True)
            for rel, text in files.items():
                dest = staging / _safe_relpath(rel)
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_text(text, encoding="utf-8")
            work = {"GIT_WORK_TREE": str(staging)}
            await repo.run("add", "-A", env=work)
            await repo.run(
                "commit", "-q", "--no-verify", "-m", message, env={**work, **_ident(author)}
            )
            sha = await repo._fresh_head()
            _write_loose_ref(repo.git_dir / "refs" / "tags" / "seed", sha)
            os.rename(staging, self.path)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        logger.info("created repo %s at %s", self.path, sha[:12], extra={"action": "git_init"})
        return sha

    async def _skeleton(self) -> Path:
        """`.git` of an empty repo on branch `main`, made by `git init` (no templates: no
        sample hooks) once per process under `home/run/`, for `init_with` to copy."""
        path = self.home / "run" / "git-skeleton" / ".git"
        if path in _SKELETONS and path.is_dir():
            return path
        lock = _SKELETON_LOCKS.setdefault(asyncio.get_running_loop(), asyncio.Lock())
        async with lock:
            if path not in _SKELETONS or not path.is_dir():
                work = path.parent
                shutil.rmtree(work, ignore_errors=True)
                work.mkdir(parents=True)
                maker = GitRepo(work, home=self.home)
                await maker.run("init", "-q", "--template=", "-b", BRANCH, str(work), require=False)
                _SKELETONS.add(path)
        return path

    async def _fresh_head(self) -> str:
        """The branch head of a repo this process just created: its loose ref file (nothing
        packs refs in a repo seconds old), else `rev-parse`. Saves a git process per seed."""
        with contextlib.suppress(OSError, UnicodeDecodeError):
            sha = (self.git_dir / "refs" / "heads" / BRANCH).read_text("ascii").strip()
            if FULL_SHA_RE.match(sha):
                return sha
        return await self._text("rev-parse", "--verify", "--end-of-options", f"refs/heads/{BRANCH}")

    # -- refs ---------------------------------------------------------------------------------

    async def resolve_commit(self, sha: str) -> str:
        """The full sha of commit `sha` in this repo; `NotFound` if this repo has no such commit
        (a sha from another agent's repo included), `BadRequest` if it is not a sha at all."""
        check_sha(sha)
        code, _ = await self.run("cat-file", "-e", f"{sha}^{{commit}}", ok_codes=(0, 1, 128))
        if code != 0:
            raise NotFound(
                f"commit {sha} is not in {self.label} "
                "(commit it there first; a sha from another agent's repo does not count)"
            )
        full = await self._text("rev-parse", "--verify", "--end-of-options", f"{sha}^{{commit}}")
        if not FULL_SHA_RE.match(full):
            raise GitError(f"git resolved {sha} to {full!r}")
        if not full.startswith(sha):  # git prefers a ref named like a short sha
            raise BadRequest(f"{sha} names a branch or tag in {self.label}; give the full sha")
        return full

    async def branch_head(self, branch: str = BRANCH) -> str | None:
        if branch != BRANCH:
            raise ValueError("only the main branch is used")
        code, out = await self.run(
            "rev-parse",
            "--verify",
            "-q",
            "--end-of-options",
            f"refs/heads/{branch}^{{commit}}",
            ok_codes=(0, 1, 128),
        )
        return out.decode().strip() if code == 0 else None

    async def tag(self, tag: str, sha: str, *, force: bool = False) -> None:
        """Point lightweight tag `refs/tags/<tag>` at `sha` (core-built names only).

        The only write the core makes in a repo an agent controls, so it is not left to git
        (which, as root, would follow a `.git/refs/tags` link anywhere on the host): the loose
        ref file is written through an fd walk that refuses links (`safefs.write_under`),
        owned like the directory it lands in. Loose refs win over `packed-refs`."""
        _check_tag(tag)
        if not FULL_SHA_RE.match(sha):
            raise ValueError(f"tag {tag}: give a full sha, not {sha!r}")
        self._require()
        if not force and await self.tag_sha(tag) is not None:
            raise GitError(f"tag {tag} already exists in {self.path}")
        rel = f".git/refs/tags/{tag}"
        try:
            await asyncio.to_thread(safefs.write_under, self.path, rel, f"{sha}\n".encode())
        except OSError as exc:
            raise GitError(
                f"cannot write tag {tag} in {self.path}: {exc.strerror or exc} "
                "(links and files in place of ref directories are refused)"
            ) from exc

    async def tag_sha(self, tag: str) -> str | None:
        _check_tag(tag)
        code, out = await self.run(
            "rev-parse",
            "--verify",
            "-q",
            "--end-of-options",
            f"refs/tags/{tag}^{{commit}}",
            ok_codes=(0, 1, 128),
        )
        return out.decode().strip() if code == 0 else None

    async def has_commit(self, sha: str) -> bool:
        check_sha(sha)
        code, _ = await self.run("cat-file", "-e", f"{sha}^{{commit}}", ok_codes=(0, 1, 128))
        return code == 0

    # -- content ------------------------------------------------------------------------------

    async def tree(self, sha: str) -> list[TreeFile]:
        """Every file of commit `sha`, validated (no symlinks, submodules or escaping paths)."""
        check_sha(sha)
        _, out = await self.run("ls-tree", "-r", "-z", "--full-tree", "--end-of-options", sha)
        files: list[TreeFile] = []
        for entry in out.split(b"\0"):
            if not entry:
                continue
            meta, _, raw_path = entry.partition(b"\t")
            mode, kind, blob = meta.decode().split(" ")
            path = raw_path.decode("utf-8", "surrogateescape")
            if kind != "blob":
                raise GitError(f"refusing {path!r}: submodules are not allowed in a config")
            if mode == "120000":
                raise GitError(f"refusing {path!r}: symlinks are not allowed in a config")
            if mode not in ("100644", "100755"):
                raise GitError(f"refusing {path!r}: unexpected file mode {mode}")
            files.append(TreeFile(_safe_relpath(path), mode, blob))
        if len(files) > MAX_TREE_FILES:
            raise GitError(f"the config has {len(files)} files; the limit is {MAX_TREE_FILES}")
        return files

    async def read_blobs(self, blobs: Sequence[str]) -> list[bytes]:
        """Blob contents in order, through one `cat-file --batch` (no filters applied)."""
        if not blobs:
            return []
        for b in blobs:
            if not FULL_SHA_RE.match(b):
                raise GitError(f"bad blob id {b!r}")
        batch = "".join(f"{b}\n" for b in blobs).encode()
        _, out = await self.run("cat-file", "--batch", stdin=batch)
        result: list[bytes] = []
        pos = 0
        total = 0
        for b in blobs:
            nl = out.index(b"\n", pos)
            header = out[pos:nl].decode().split(" ")
            if len(header) != 3 or header[1] != "blob":
                raise GitError(f"object {b} is not a blob")
            size = int(header[2])
            total += size
            if total > MAX_TREE_BYTES:
                raise GitError(f"the config is over {MAX_TREE_BYTES >> 20} MiB")
            start = nl + 1
            result.append(out[start : start + size])
            pos = start + size + 1  # content is followed by a newline
        return result

    async def show_file(self, sha: str, path: str) -> bytes | None:
        """One file of commit `sha` (a core-chosen path like `agent.toml`), None if absent."""
        rel = _safe_relpath(path)
        for f in await self.tree(sha):
            if f.path == rel:
                [data] = await self.read_blobs([f.blob])
                return data
        return None

    async def read_tree(self, sha: str) -> list[tuple[TreeFile, bytes]]:
        """Every file of commit `sha` (validated as in `tree`) with its content: two git
        processes, whatever the number of files."""
        files = await self.tree(sha)
        contents = await self.read_blobs([f.blob for f in files])
        return list(zip(files, contents, strict=True))

    async def extract(self, sha: str, dest: Path) -> list[str]:
        """Write commit `sha`'s files into the empty directory `dest`; returns their paths."""
        return write_tree(dest, await self.read_tree(sha))

    async def diff(self, old: str | None, new: str, *, max_bytes: int = 256 << 10) -> str:
        """Unified diff from commit `old` (None: nothing) to commit `new`, plain text."""
        check_sha(new)
        if old is not None:
            check_sha(old)
        base = old if old is not None else await self.empty_tree()
        _, out = await self.run(
            "diff",
            "--no-ext-diff",
            "--no-textconv",
            "--no-color",
            "--no-renames",
            "--end-of-options",
            base,
            new,
        )
        if len(out) > max_bytes:
            cut = out[:max_bytes].decode("utf-8", "replace")
            return cut + f"\n[diff truncated at {max_bytes >> 10} KiB]\n"
        return out.decode("utf-8", "replace")

    async def empty_tree(self) -> str:
        """The id of the empty tree in this repo's hash (git knows it without storing it)."""
        _, out = await self.run("hash-object", "-t", "tree", "--stdin", stdin=b"")
        return out.decode().strip()


_SKELETONS: set[Path] = set()
_SKELETON_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


def _write_loose_ref(path: Path, sha: str) -> None:
    """Point a ref at `sha` in a repo this process just created and nobody else can see yet
    (the staging dir): a loose ref file, exactly what `git update-ref` writes there."""
    if not FULL_SHA_RE.match(sha):
        raise GitError(f"refusing ref value {sha!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".lock")
    tmp.write_text(sha + "\n", encoding="ascii")
    os.replace(tmp, path)


def write_tree(dest: Path, items: Sequence[tuple[TreeFile, bytes]]) -> list[str]:
    """Write files (paths validated by `tree`) into the empty directory `dest`, never following
    a symlink or overwriting; returns their paths."""
    for f, data in items:
        target = dest / f.path
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        if f.mode == "100755":
            os.chmod(target, 0o755)
    return [f.path for f, _ in items]


def _ident(who: Identity) -> dict[str, str]:
    return {
        "GIT_AUTHOR_NAME": who.name,
        "GIT_AUTHOR_EMAIL": who.email,
        "GIT_COMMITTER_NAME": who.name,
        "GIT_COMMITTER_EMAIL": who.email,
    }
