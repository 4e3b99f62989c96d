"""`GitRepo` against real git: creation, sha validation per repo, and a hostile repo (its own
config, attributes, symlinks, a foreign owner) never making the core run or read anything."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from hyperhive.core.gitrepo import CORE_EMAIL, CORE_NAME, GitError, GitRepo
from hyperhive.errors import BadRequest, NotFound
from tests.support.git import commit, git


@pytest.fixture
async def repo(short_tmp: Path) -> GitRepo:
    r = GitRepo(short_tmp / "a" / "config", home=short_tmp, label="a's config repo")
    await r.init_with({"agent.toml": "model = 'haiku'\n", "role.md": "# a\n"}, "seed")
    return r


async def test_init_commits_as_hive_core_on_main_and_tags_seed(repo: GitRepo) -> None:
    head = await repo.branch_head()
    assert head is not None and len(head) == 40
    assert await repo.tag_sha("seed") == head
    assert git(repo.path, "log", "-1", "--format=%an <%ae>") == f"{CORE_NAME} <{CORE_EMAIL}>"
    assert git(repo.path, "status", "--porcelain") == ""  # the work tree is checked out
    assert (repo.path / "agent.toml").read_text() == "model = 'haiku'\n"
    assert not list(repo.path.parent.glob(".config.new-*"))  # staging dir renamed away
    with pytest.raises(GitError, match="already exists"):
        await repo.init_with({"x": "y"}, "again")


async def test_resolve_only_commits_of_this_repo(repo: GitRepo, short_tmp: Path) -> None:
    head = await repo.branch_head()
    assert head is not None
    assert await repo.resolve_commit(head[:7]) == head
    other = GitRepo(short_tmp / "b" / "config", home=short_tmp, label="b's config repo")
    foreign = await other.init_with({"agent.toml": "model = 'opus'\n"}, "other")
    with pytest.raises(NotFound, match="not in a's config repo"):
        await repo.resolve_commit(foreign)
    tree = git(repo.path, "rev-parse", "HEAD^{tree}")
    with pytest.raises(NotFound):  # a tree is not a commit
        await repo.resolve_commit(tree)
    git(repo.path, "tag", "abcdef12", head)  # a ref that looks like a short sha
    if not head.startswith("abcdef12"):
        with pytest.raises(BadRequest, match="names a branch or tag"):
            await repo.resolve_commit("abcdef12")
    for bad in ("../x", "HEAD", "main", "--all", "ABCDEF1", head[:6], head + "0", "a" * 41):
        with pytest.raises(BadRequest, match="not a commit sha"):
            await repo.resolve_commit(bad)


async def test_tags_are_core_names_only_and_never_silently_moved(repo: GitRepo) -> None:
    head = await repo.branch_head()
    assert head is not None
    await repo.tag("proposal/1", head)
    with pytest.raises(GitError, match="already exists"):
        await repo.tag("proposal/1", head)
    await repo.tag("deployed/1", head, force=True)
    await repo.tag("deployed/1", head, force=True)
    for bad in ("../../heads/main", "proposal/x", "refs/heads/main", "proposal/1/.."):
        with pytest.raises(ValueError):
            await repo.tag(bad, head)


async def test_diff_and_extract(repo: GitRepo, short_tmp: Path) -> None:
    seed = await repo.branch_head()
    assert seed is not None
    (repo.path / "tools").mkdir()
    (repo.path / "tools/run.sh").write_text("#!/bin/sh\n")
    os.chmod(repo.path / "tools/run.sh", 0o755)
    new = commit(repo.path, {"agent.toml": "model = 'opus'\n"})
    diff = await repo.diff(seed, new)
    assert "-model = 'haiku'" in diff and "+model = 'opus'" in diff
    whole = await repo.diff(None, seed)
    assert "+model = 'haiku'" in whole and "new file mode" in whole
    dest = short_tmp / "out"
    dest.mkdir()
    assert sorted(await repo.extract(new, dest)) == ["agent.toml", "role.md", "tools/run.sh"]
    assert (dest / "agent.toml").read_text() == "model = 'opus'\n"
    assert os.access(dest / "tools/run.sh", os.X_OK)
    assert not (dest / ".git").exists()


async def test_hostile_repo_config_runs_nothing(repo: GitRepo, short_tmp: Path) -> None:
    """The manager can write .git/config and .gitattributes: no program of its choosing runs
    when the core (root) diffs, reads or extracts its commits."""
    marker = short_tmp / "pwned"
    evil = f"sh -c 'touch {marker}'"
    git(repo.path, "config", "core.fsmonitor", evil)
    git(repo.path, "config", "diff.external", evil)
    git(repo.path, "config", "diff.evil.textconv", evil)
    git(repo.path, "config", "filter.evil.smudge", evil)
    git(repo.path, "config", "filter.evil.clean", "cat")
    git(repo.path, "config", "core.pager", evil)
    git(repo.path, "config", "core.hooksPath", str(short_tmp))
    seed = await repo.branch_head()
    assert seed is not None
    new = commit(
        repo.path,
        {".gitattributes": "* diff=evil filter=evil\n", "agent.toml": "model = 'x'\n"},
    )
    marker.unlink(missing_ok=True)  # the test's own git ran the clean filter; start clean
    assert "+model = 'x'" in await repo.diff(seed, new)
    dest = short_tmp / "out"
    dest.mkdir()
    await repo.extract(new, dest)
    assert (dest / "agent.toml").read_text() == "model = 'x'\n"  # bytes as committed
    assert await repo.show_file(new, "agent.toml") == b"model = 'x'\n"
    await repo.tag("proposal/9", new)
    assert not marker.exists()


async def test_symlinks_are_refused(repo: GitRepo, short_tmp: Path) -> None:
    os.symlink("/etc/passwd", repo.path / "role.md.link")
    sha = commit(repo.path, {})
    with pytest.raises(GitError, match="symlinks are not allowed"):
        await repo.tree(sha)
    dest = short_tmp / "out"
    dest.mkdir()
    with pytest.raises(GitError, match="symlinks"):
        await repo.extract(sha, dest)
    assert list(dest.iterdir()) == []


async def test_a_git_dir_that_is_not_a_directory_is_refused(short_tmp: Path) -> None:
    target = GitRepo(short_tmp / "real" / "config", home=short_tmp)
    await target.init_with({"agent.toml": ""}, "x")
    victim = short_tmp / "v" / "config"
    victim.mkdir(parents=True)
    (victim / ".git").write_text(f"gitdir: {target.git_dir}\n")
    r = GitRepo(victim, home=short_tmp)
    assert not r.exists()
    with pytest.raises(GitError, match="not a directory"):
        await r.branch_head()
    (victim / ".git").unlink()
    os.symlink(target.git_dir, victim / ".git")
    with pytest.raises(GitError, match="not a directory"):
        await r.branch_head()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown")
async def test_a_repo_owned_by_an_agent_uid_works(repo: GitRepo) -> None:
    """The manager's uid owns files it committed; git's ownership check must not bite."""
    for dirpath, dirnames, filenames in os.walk(repo.path):
        for n in [*dirnames, *filenames]:
            os.chown(os.path.join(dirpath, n), 200123, 200123, follow_symlinks=False)
    os.chown(repo.path, 200123, 200123)
    head = await repo.branch_head()
    assert head is not None
    assert await repo.resolve_commit(head[:10]) == head
    await repo.tag("proposal/3", head)
    assert (repo.path / ".git" / "refs" / "tags" / "proposal" / "3").stat().st_uid == 200123


async def test_a_linked_refs_dir_never_makes_the_core_write_elsewhere(
    repo: GitRepo, short_tmp: Path
) -> None:
    """The manager controls the repo: `.git/refs/tags` (or a directory below) as a link to a
    host directory must not make the core (root) create a tag file there."""
    head = await repo.branch_head()
    assert head is not None
    victim = short_tmp / "victim"
    victim.mkdir()
    tags = repo.path / ".git" / "refs" / "tags"
    for sub in tags.iterdir():
        if sub.is_file():
            (victim / sub.name).write_text(sub.read_text())
    subprocess.run(["rm", "-rf", str(tags)], check=True)
    tags.symlink_to(victim)
    with pytest.raises(GitError):
        await repo.tag("proposal/7", head)
    with pytest.raises(GitError):
        await repo.tag("deployed/7", head, force=True)
    assert not (victim / "proposal").exists() and not (victim / "deployed").exists()
    tags.unlink()
    tags.mkdir()
    (tags / "deployed").symlink_to(victim)  # one level further down
    with pytest.raises(GitError):
        await repo.tag("deployed/8", head, force=True)
    assert not (victim / "8").exists()
