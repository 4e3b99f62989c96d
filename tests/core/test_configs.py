"""`hive.configs`: seeding from the template, validated atomic applies, deployed_sha, the
manager's binds. Real git, a real hive."""

from __future__ import annotations

import os

import pytest

from hyperhive.agentconfig import TEMPLATE
from hyperhive.client.host import HostClient
from hyperhive.core.configs import KEEP_REVS, ConfigRepos
from hyperhive.core.hive import Hive
from hyperhive.errors import ConfigError, Conflict, NotFound
from tests.support.git import commit, git


def configs(hive: Hive) -> ConfigRepos:
    return hive.configs  # type: ignore[attr-defined, no-any-return]


async def test_seed_writes_the_template_as_hive_core(hive: Hive) -> None:
    c = configs(hive)
    assert not c.has_repo("alice")
    sha = await c.seed("alice")
    repo = hive.paths.config_repo("alice")
    assert (repo / "agent.toml").read_text() == TEMPLATE
    assert "alice" in (repo / "role.md").read_text()
    assert git(repo, "log", "--format=%an <%ae>") == "hive-core <hive-core@hyperhive>"
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD") == "main"
    assert await c.repo("alice").tag_sha("seed") == sha
    with pytest.raises(Conflict, match="already has a config repo"):
        await c.seed("alice")
    assert c.applied_sha("alice") is None  # seeding applies nothing


async def test_apply_swaps_atomically_and_sets_deployed_sha(hive: Hive) -> None:
    c = configs(hive)
    seed = await c.seed("alice")
    await c.apply("alice", seed, tag="deployed/1")
    link = hive.paths.applied_dir("alice")
    assert link.is_symlink() and not os.readlink(link).startswith("/")  # relative: binds work
    assert (link / "agent.toml").read_text() == TEMPLATE
    assert c.applied_sha("alice") == seed and c.deployed_sha("alice") == seed[:12]
    assert await c.repo("alice").tag_sha("deployed/1") == seed
    rows = (await HostClient(hive.paths.host_sock).call("agent_status"))["agent_statuses"]
    assert "deployed_sha" not in {r["name"]: r for r in rows}["manager"]

    repo = hive.paths.config_repo("alice")
    new = commit(repo, {"agent.toml": 'model = "opus"\n'})
    await c.apply("alice", new[:9])
    assert c.applied_sha("alice") == new
    assert hive.agent_configs.get("alice").model == "opus"  # invalidated at once


async def test_a_broken_commit_changes_nothing(hive: Hive) -> None:
    c = configs(hive)
    seed = await c.seed("alice")
    await c.apply("alice", seed)
    link = hive.paths.applied_dir("alice")
    before = os.readlink(link)
    repo = hive.paths.config_repo("alice")
    cases = {
        "allowed_recipients": {"agent.toml": "allowed_recipients = 'bob'\n"},
        "not valid TOML": {"agent.toml": "model = \n"},
        "role_prompt": {"agent.toml": 'role_prompt = "missing.md"\n'},
        "unknown": {"agent.toml": "colour = 'blue'\n"},
    }
    for why, files in cases.items():
        sha = commit(repo, files, why)
        with pytest.raises(ConfigError, match=why if why != "unknown" else "colour"):
            await c.apply("alice", sha)
        assert os.readlink(link) == before
        assert (link / "agent.toml").read_text() == TEMPLATE
    git(repo, "rm", "-q", "agent.toml")
    git(repo, "commit", "-q", "-m", "no config")
    with pytest.raises(ConfigError, match=r"has no agent\.toml"):
        await c.apply("alice", git(repo, "rev-parse", "HEAD"))
    os.symlink("/etc/shadow", repo / "notes.md")
    git(repo, "checkout", "-q", seed, "--", "agent.toml")
    sha = commit(repo, {}, "symlink")
    with pytest.raises(ConfigError, match="symlinks are not allowed"):
        await c.apply("alice", sha)
    assert os.readlink(link) == before


async def test_a_hand_made_applied_dir_is_replaced_once_and_old_trees_pruned(hive: Hive) -> None:
    c = configs(hive)
    legacy = hive.paths.applied_dir("alice")
    legacy.mkdir(parents=True)
    (legacy / "agent.toml").write_text('model = "legacy"\n')
    assert c.applied_sha("alice") is None and c.has_applied("alice")
    seed = await c.seed("alice")
    await c.apply("alice", seed)
    assert legacy.is_symlink() and (legacy / "agent.toml").read_text() == TEMPLATE
    repo = hive.paths.config_repo("alice")
    for i in range(KEEP_REVS + 2):
        await c.apply("alice", commit(repo, {"agent.toml": f'model = "m{i}"\n'}))
    revs = [p for p in (hive.paths.applied_root / ".revs" / "alice").iterdir()]
    assert len(revs) == KEEP_REVS
    assert legacy.resolve() in {p.resolve() for p in revs}
    assert hive.agent_configs.get("alice").model == f"m{KEEP_REVS + 1}"


async def test_ensure_applied_and_manager_binds(hive: Hive) -> None:
    c = configs(hive)
    sha = await c.ensure_applied("bob")
    assert sha is not None and c.applied_sha("bob") == sha
    assert await c.ensure_applied("bob") == sha  # idempotent
    # the fresh seed is applied from memory: the tree must be exactly the seed commit's
    committed = await c.repo("bob").read_tree(sha)
    applied = hive.paths.applied_dir("bob")
    assert sorted(p.name for p in applied.iterdir()) == sorted(f.path for f, _ in committed)
    for f, data in committed:
        assert (applied / f.path).read_bytes() == data
    assert not (hive.paths.config_repo("bob") / ".git" / "hooks").exists()  # no sample hooks
    await c.seed("alice")
    binds = c.manager_binds()
    assert binds == [
        (hive.paths.configs_root, "/agents", True),
        (hive.paths.applied_root, "/applied", False),
    ]
    # the bound root holds only config repos (real git work trees), nothing of agents' state;
    # the manager may write inside repos but not add entries to the root
    root = hive.paths.configs_root
    assert sorted(p.name for p in root.iterdir()) == ["alice", "bob"]
    assert all((p / ".git").is_dir() for p in root.iterdir())
    assert root.stat().st_mode & 0o777 == 0o755
    # the documented place still leads to the repo
    assert hive.paths.config_link("alice").resolve() == hive.paths.config_repo("alice").resolve()


async def test_resolve_names_the_repo(hive: Hive) -> None:
    c = configs(hive)
    with pytest.raises(NotFound, match="there is no alice's config repo yet"):
        await c.resolve("alice", "abcdef1")


async def test_remove_applied_for_purge(hive: Hive) -> None:
    c = configs(hive)
    await c.ensure_applied("alice")
    assert await c.remove_applied("alice") is True
    link = hive.paths.applied_dir("alice")
    assert not link.exists() and not link.is_symlink()
    assert not (hive.paths.applied_root / ".revs" / "alice").exists()
    assert c.applied_sha("alice") is None and hive.agent_configs.get("alice").model is None
    assert c.has_repo("alice")  # the proposed repo is the caller's to keep or wipe
    assert await c.remove_applied("alice") is False
