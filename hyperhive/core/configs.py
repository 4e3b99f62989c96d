"""Config as code (the `configs` feature, `hive.configs`): each agent's *proposed* config repo
and its *applied* copy.

- Proposed: `DIR/agents/<name>/config/`, a git repo on branch `main`. The core creates it from
  the template (`agent.toml` + a `role.md` placeholder) as `hive-core <hive-core@hyperhive>`
  and tags that commit `seed`; afterwards only the manager commits there (as itself). The core
  never moves the branch: it only adds tags (`proposal/<id>` pins a requested commit,
  `deployed/<id>` marks what an approval applied).
- Applied: `DIR/applied/<name>` is a relative symlink to `.revs/<name>/<sha>-<n>/`, a plain
  file tree (no `.git`) extracted from one commit. Applying builds the new tree in a temp dir,
  renames it into `.revs/`, then swaps the symlink with `rename(2)`: a reader (the send policy,
  a sandbox being built) sees the old config or the new one, never a mix or nothing. The
  symlink's target names the applied sha, which is where `deployed_sha` comes from. The newest
  `KEEP_REVS` trees are kept (a sandbox not yet rebuilt still has its old tree bound).
- A commit is validated before anything changes: `agent.toml` must exist and pass
  `parse_agent_config`, `role_prompt` must name a file in the commit, and the tree may hold no
  symlinks, submodules or escaping paths (`gitrepo`). A refused commit leaves the applied
  config exactly as it was.
- Per agent, applies are serialized by a lock; git itself is hardened against a hostile repo
  (see `hyperhive.core.gitrepo`).

The manager's sandbox sees every proposed repo read-write at `/agents/<name>` and the applied
root read-only at `/applied` (`manager_binds`). A repo created while the manager runs is only
bound at its next (re)build; `config_repo_created` is published so the lifecycle can react.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from hyperhive.agentconfig import TEMPLATE, AgentConfig, parse_agent_config
from hyperhive.core.feature import BaseFeature
from hyperhive.core.gitrepo import FULL_SHA_RE, GitError, GitRepo, TreeFile, write_tree
from hyperhive.errors import ConfigError, Conflict, InvalidName, NotFound
from hyperhive.names import validate_name

if TYPE_CHECKING:
    from hyperhive.core.hive import Hive

logger = logging.getLogger(__name__)

KEEP_REVS = 3
REVS = ".revs"  # under the applied root; names never start with '.', so it cannot clash
AGENT_TOML = "agent.toml"
ROLE_MD = "role.md"

ROLE_PLACEHOLDER = """\
# {name}

Describe this agent's role here: what it is for, what it owns, who it works with.
To use this file, set `role_prompt = "role.md"` in agent.toml; it is then appended to the
agent's system prompt once the operator approves the commit.
"""

Bind = tuple[Path, str, bool]  # (host path, path inside the sandbox, writable)
RepoOwner = Callable[[str], tuple[int, int] | None]  # agent name → (uid, gid) for new repos


def template_files(name: str) -> dict[str, str]:
    return {AGENT_TOML: TEMPLATE, ROLE_MD: ROLE_PLACEHOLDER.format(name=name)}


class ConfigRepos(BaseFeature):
    """A feature of its own (it serves no verbs): approvals and the lifecycle both use it."""

    name = "configs"

    def __init__(self, repo_owner: RepoOwner | None = None) -> None:
        """`repo_owner`: who new repos belong to (whoever knows the sandbox uids — the
        lifecycle — chowns them to the manager so it can commit in them)."""
        self._locks: dict[str, asyncio.Lock] = {}
        self.repo_owner = repo_owner

    async def start(self, hive: Hive) -> None:
        self.hive = hive
        self.paths = hive.paths

    # -- repos ------------------------------------------------------------------------------

    def repo(self, name: str) -> GitRepo:
        validate_name(name)
        return GitRepo(
            self.paths.config_repo(name), home=self.paths.home, label=f"{name}'s config repo"
        )

    def has_repo(self, name: str) -> bool:
        return self.repo(name).exists()

    def lock(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(validate_name(name), asyncio.Lock())

    async def seed(self, name: str, message: str | None = None) -> str:
        """Create `name`'s config repo from the template; `Conflict` if it already exists (a
        kept repo is never overwritten). Returns the seed commit's sha."""
        repo = self.repo(name)
        if repo.exists() or repo.path.exists():
            raise Conflict(f"{name} already has a config repo")
        sha = await repo.init_with(
            template_files(name), message or f"seed config for {name}\n\nfrom the hive template"
        )
        owner = self.repo_owner(name) if self.repo_owner is not None else None
        if owner is not None:
            await asyncio.to_thread(_chown_tree, repo.path, *owner)
        self._link(name)
        logger.info(
            "seeded config repo of %s at %s",
            name,
            sha[:12],
            extra={"action": "config_seeded", "agent": name},
        )
        self.hive.hub.publish("config_repo_created", agent=name, sha=sha)
        return sha

    async def resolve(self, name: str, sha: str) -> str:
        """The full sha of commit `sha` in `name`'s repo (refused if it is not there)."""
        return await self.repo(name).resolve_commit(sha)

    async def head(self, name: str) -> str | None:
        repo = self.repo(name)
        return await repo.branch_head() if repo.exists() else None

    # -- applied ----------------------------------------------------------------------------

    def _revs_dir(self, name: str) -> Path:
        return self.paths.applied_root / REVS / validate_name(name)

    def applied_sha(self, name: str) -> str | None:
        """The full sha the applied config was extracted from; None if none (or hand-made)."""
        link = self.paths.applied_dir(name)
        try:
            target = os.readlink(link)
        except OSError:  # missing, or a hand-made directory
            return None
        sha = Path(target).name.split("-", 1)[0]
        return sha if FULL_SHA_RE.match(sha) else None

    def deployed_sha(self, name: str) -> str | None:
        sha = self.applied_sha(name)
        return sha[:12] if sha else None

    def has_applied(self, name: str) -> bool:
        return (self.paths.applied_dir(name) / AGENT_TOML).is_file()

    async def validate(self, name: str, sha: str) -> AgentConfig:
        """Parse the commit's agent.toml (and check its role file) without applying it."""
        full = await self.repo(name).resolve_commit(sha)
        cfg, _ = await self._load(name, full)
        return cfg

    async def _load(self, name: str, full: str) -> tuple[AgentConfig, list[tuple[TreeFile, bytes]]]:
        """Commit `full`'s files, validated as a config, with the parsed agent.toml."""
        try:
            items = await self.repo(name).read_tree(full)
        except GitError as exc:
            raise ConfigError(f"{name}'s config at {full[:12]}: {exc}") from exc
        return _check_config(name, full, {f.path: data for f, data in items}), items

    async def apply(self, name: str, sha: str, *, tag: str | None = None) -> AgentConfig:
        """Validate commit `sha` of `name`'s repo, then make it the applied config (atomic swap)
        and tag it (`deployed/<id>`). A refused commit changes nothing."""
        async with self.lock(name):
            repo = self.repo(name)
            full = await repo.resolve_commit(sha)
            cfg, items = await self._load(name, full)
            self._install(name, full, items)
            if tag is not None:
                try:
                    await repo.tag(tag, full, force=True)
                except GitError as exc:  # the config is applied; a missing tag is cosmetic
                    logger.warning(
                        "could not tag %s in %s's repo: %s",
                        tag,
                        name,
                        exc,
                        extra={"action": "config_tag_failed", "agent": name},
                    )
        self._applied(name, full)
        return cfg

    def _install(self, name: str, full: str, items: list[tuple[TreeFile, bytes]]) -> None:
        """Write the files as a new tree under `.revs/`, swap the applied link to it, prune."""
        revs = self._revs_dir(name)
        revs.mkdir(parents=True, exist_ok=True)
        stamp = time.time_ns()
        tmp = revs / f".tmp-{stamp}"
        final = revs / f"{full}-{stamp}"
        try:
            tmp.mkdir()
            write_tree(tmp, items)
            os.chmod(tmp, 0o755)
            os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self._swap_link(name, final)
        self.hive.agent_configs.invalidate(name)
        self._prune(name, keep=final)

    def _applied(self, name: str, full: str) -> None:
        logger.info(
            "applied %s's config %s",
            name,
            full[:12],
            extra={"action": "config_applied", "agent": name},
        )
        self.hive.hub.publish("config_applied", agent=name, sha=full, deployed_sha=full[:12])

    async def ensure_applied(self, name: str) -> str | None:
        """For agents created without an approval (operator `spawn`): seed the repo if it is
        missing and apply its `seed` commit if nothing is applied yet. Returns the applied sha
        (None when a hand-made applied dir is kept as it is)."""
        if not self.has_repo(name):
            sha = await self.seed(name)
            if not self.paths.applied_dir(name).exists():
                # the seed commit holds exactly the template: apply it from memory, no git
                items = [
                    (TreeFile(path, "100644", "0" * 40), text.encode())
                    for path, text in template_files(name).items()
                ]
                async with self.lock(name):
                    _check_config(name, sha, {f.path: data for f, data in items})
                    self._install(name, sha, items)
                self._applied(name, sha)
                return sha
        if self.paths.applied_dir(name).exists():
            return self.applied_sha(name)
        seed = await self.repo(name).tag_sha("seed")
        if seed is None:
            raise NotFound(f"{name}'s config repo has no seed tag; request_apply_commit instead")
        await self.apply(name, seed)
        return seed

    async def remove_applied(self, name: str) -> bool:
        """Delete `name`'s applied config: the symlink and every kept tree (for purge: a plain
        `rmtree(applied_dir)` refuses a symlink). False if there was nothing."""
        link = self.paths.applied_dir(name)
        found = False
        async with self.lock(name):
            if link.is_symlink():
                link.unlink()
                found = True
            elif link.is_dir():
                await asyncio.to_thread(shutil.rmtree, link)
                found = True
            revs = self._revs_dir(name)
            if revs.is_dir():
                await asyncio.to_thread(shutil.rmtree, revs)
                found = True
        self.hive.agent_configs.invalidate(name)
        return found

    def _swap_link(self, name: str, target: Path) -> None:
        link = self.paths.applied_dir(name)
        rel = os.path.relpath(target, link.parent)
        tmp_link = link.parent / f".{name}.link-{time.time_ns()}"
        os.symlink(rel, tmp_link)
        try:
            if link.is_dir() and not link.is_symlink():
                # a hand-made (or lifecycle-made) directory: move it aside once. The only
                # non-atomic moment in this module, and only on the first apply.
                aside = self._revs_dir(name) / f"legacy-{time.time_ns()}"
                os.rename(link, aside)
            os.replace(tmp_link, link)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_link)
            raise

    def _prune(self, name: str, *, keep: Path) -> None:
        revs = self._revs_dir(name)
        trees = sorted(
            (p for p in revs.iterdir() if not p.name.startswith(".")),
            key=lambda p: p.name.rsplit("-", 1)[-1].rjust(24, "0"),
        )
        for old in trees[:-KEEP_REVS]:
            if old != keep:
                shutil.rmtree(old, ignore_errors=True)

    # -- diffs --------------------------------------------------------------------------------

    async def diff(self, name: str, sha: str) -> str:
        """Unified diff from the applied commit (nothing, if none) to commit `sha`."""
        repo = self.repo(name)
        applied = self.applied_sha(name)
        header = ""
        if applied is not None and not await repo.has_commit(applied):
            header = f"# the applied commit {applied[:12]} is no longer in the repo\n"
            applied = None
        return header + await repo.diff(applied, sha)

    # -- the manager's view -------------------------------------------------------------------

    def _link(self, name: str) -> None:
        """`agents/<name>/config` -> `../../configs/<name>`, the documented place of the repo."""
        link = self.paths.config_link(name)
        if link.is_symlink() or link.exists():
            return
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(Path("..") / ".." / "configs" / name)

    def repo_names(self) -> list[str]:
        """Every name with a config repo (registered agents and tombstones alike)."""
        root = self.paths.configs_root
        if not root.is_dir():
            return []
        out = []
        for entry in sorted(root.iterdir()):
            try:
                name = validate_name(entry.name)
            except InvalidName:
                continue
            if self.repo(name).exists():
                out.append(name)
        return out

    def manager_binds(self) -> list[Bind]:
        """Binds for the manager's sandbox: each proposed repo read-write at `/agents/<name>`,
        the applied root (symlinks are relative, so they resolve inside) read-only at
        `/applied`."""
        root = self.paths.configs_root
        root.mkdir(parents=True, exist_ok=True)
        root.chmod(0o755)  # the manager writes inside its repos, never new entries here
        return [(root, "/agents", True), (self.paths.applied_root, "/applied", False)]


def _check_config(name: str, full: str, files: Mapping[str, bytes]) -> AgentConfig:
    """A commit's files as a config: agent.toml parses, its role_prompt file is there."""
    source = f"{name}'s {AGENT_TOML} at {full[:12]}"
    raw = files.get(AGENT_TOML)
    if raw is None:
        raise ConfigError(f"{name}'s config at {full[:12]} has no {AGENT_TOML}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source}: not UTF-8 text") from exc
    cfg = parse_agent_config(text, source)
    if cfg.role_prompt and cfg.role_prompt not in files:
        raise ConfigError(f"{source}: role_prompt: {cfg.role_prompt!r} is not in the commit")
    return cfg


def _chown_tree(root: Path, uid: int, gid: int) -> None:
    os.chown(root, uid, gid, follow_symlinks=False)
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            os.chown(os.path.join(dirpath, n), uid, gid, follow_symlinks=False)
