"""Bundles of config repos (`core/gitbundle.py`): what arrives from another node is checked
before anything is written, and a hostile commit (a symlink) never lands in a work tree."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from hyperhive.core import gitbundle
from hyperhive.core.gitrepo import GitError, GitRepo


def git(repo: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=m", "-c", "user.email=m@h", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


async def origin(home: Path) -> tuple[GitRepo, str, str]:
    """A repo made by the core with a second commit by 'the manager': (repo, seed, head)."""
    repo = GitRepo(home / "configs" / "alice", home=home)
    seed = await repo.init_with({"agent.toml": 'model = "a"\n'}, "seed")
    (repo.path / "agent.toml").write_text('model = "b"\n')
    git(repo.path, "add", "-A")
    git(repo.path, "commit", "-q", "-m", "b")
    head = git(repo.path, "rev-parse", "HEAD")
    await repo.tag("proposal/7", head)
    return repo, seed, head


async def test_a_bundle_travels_and_is_checked(tmp_path: Path) -> None:
    repo, seed, head = await origin(tmp_path / "a")
    data = await gitbundle.create_bundle(repo, ["refs/tags/proposal/7"])
    assert await gitbundle.bundle_heads(tmp_path, data) == {"refs/tags/proposal/7": head}
    # a node without the repo builds one from the bundle: clean work tree, index, main
    home_b = tmp_path / "b"
    home_b.mkdir()
    there = GitRepo(home_b / "configs" / "alice", home=home_b)
    await gitbundle.repo_from_bundle(there, data, {"refs/tags/proposal/7": head})
    assert (there.path / "agent.toml").read_text() == 'model = "b"\n'
    assert await there.branch_head() == head and await there.has_commit(seed)
    assert git(there.path, "status", "--porcelain") == ""
    # a node with the repo adds the objects only: its branch does not move
    home_c = tmp_path / "c"
    home_c.mkdir()
    other = GitRepo(home_c / "configs" / "alice", home=home_c)
    own = await other.init_with({"agent.toml": 'model = "c"\n'}, "its own seed")
    await gitbundle.unbundle(other, data, {"refs/tags/proposal/7": head})
    assert await other.has_commit(head) and await other.branch_head() == own


async def test_a_bundle_not_holding_the_pinned_commit_is_refused(tmp_path: Path) -> None:
    repo, seed, head = await origin(tmp_path / "a")
    data = await gitbundle.create_bundle(repo, ["refs/tags/proposal/7"])
    home_b = tmp_path / "b"
    home_b.mkdir()
    there = GitRepo(home_b / "configs" / "alice", home=home_b)
    own = await there.init_with({"agent.toml": "x = 1\n"}, "seed")
    with pytest.raises(GitError, match="not " + seed):
        await gitbundle.unbundle(there, data, {"refs/tags/proposal/7": seed})
    assert not await there.has_commit(head)  # nothing was added
    assert await there.branch_head() == own
    with pytest.raises(GitError):
        await gitbundle.unbundle(there, b"not a bundle", {"refs/tags/proposal/7": head})


async def test_a_symlink_in_the_bundle_never_reaches_a_work_tree(tmp_path: Path) -> None:
    repo, _, _ = await origin(tmp_path / "a")
    os.symlink("/etc/passwd", repo.path / "role.md")
    git(repo.path, "add", "-A")
    git(repo.path, "commit", "-q", "-m", "hostile")
    bad = git(repo.path, "rev-parse", "HEAD")
    await repo.tag("proposal/8", bad, force=True)
    data = await gitbundle.create_bundle(repo, ["refs/tags/proposal/8"])
    home_b = tmp_path / "b"
    home_b.mkdir()
    there = GitRepo(home_b / "configs" / "alice", home=home_b)
    with pytest.raises(GitError, match="symlink"):
        await gitbundle.repo_from_bundle(there, data, {"refs/tags/proposal/8": bad})
    assert not there.path.exists()
    assert not any(p.name.startswith(".alice") for p in there.path.parent.iterdir())


def test_only_core_refs_are_bundled() -> None:
    with pytest.raises(ValueError):
        gitbundle._check_ref("refs/heads/evil")
    with pytest.raises(ValueError):
        gitbundle._check_ref("refs/tags/proposal/1/../../x")
