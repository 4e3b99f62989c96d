"""Config repos and approvals across nodes, for real (docs/multihost.md, "Config repos across
nodes"): two `hive serve` processes on one PostgreSQL database, the manager on node-a, its
agent alice on node-b (which runs her with the process runtime).

Seen on main: the manager on node-a had no repo of an agent spawned on node-b (so it could
not propose), an approved spawn always ran on the approving node, and an approved commit for
another node's agent was applied on the approving node, never on the agent's.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hyperhive.client.agent import NO_RETRY, AgentClient
from hyperhive.client.host import HostClient
from tests.support.daemon import DaemonProcess
from tests.support.nodes import all_peers_up, status_of
from tests.support.waiting import eventually

# node-a: the manager (external: the test speaks for it on its socket); node-b runs its agents
# itself (the process runtime) and their claude reaches a dead endpoint (no turn succeeds; none
# is needed)
BASE = """
[node]
heartbeat_seconds = 0.5
lost_after_seconds = 5.0
[model_endpoint]
base_url = "http://127.0.0.1:9/a/{agent}"
retries = 0
turn_attempts = 1
"""
CONFIG_A = '[defaults]\nruntime = "external"\n' + BASE
CONFIG_B = '[defaults]\nruntime = "process"\nwarm_seconds = 0\n' + BASE


def node(home: Path, name: str, url: str, config: str) -> DaemonProcess:
    return DaemonProcess(home, "--db", url, "--node", name, config=config)


@pytest.fixture
def two_nodes(short_tmp: Path, pg_url: Callable[[], str]) -> Iterator[tuple[DaemonProcess, ...]]:
    url = pg_url()
    a = node(short_tmp / "a", "node-a", url, CONFIG_A).start()
    try:
        b = node(short_tmp / "b", "node-b", url, CONFIG_B).start()
        try:
            yield a, b
        finally:
            b.stop()
    finally:
        a.stop()
        kill_agents_under(short_tmp)  # process-runtime agents outlive their daemon by design


def kill_agents_under(root: Path) -> None:
    """SIGKILL the agent processes this test started (their command lines name its dir)."""
    import os
    import signal

    mine = str(root).encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if mine in (entry / "cmdline").read_bytes():
                os.kill(int(entry.name), signal.SIGKILL)
        except (OSError, ProcessLookupError):
            continue


def git(repo: Path, *args: str) -> str:
    """git as the manager would run it in /agents/<name> (its own identity)."""
    out = subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=manager", "-c", "user.email=m@hive", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def commit_model(repo: Path, model: str) -> str:
    toml = repo / "agent.toml"
    text = toml.read_text()
    lines = [ln for ln in text.splitlines() if not ln.startswith("model = ")]
    toml.write_text(f'model = "{model}"\n' + "\n".join(lines) + "\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", f"alice on {model}")
    return git(repo, "rev-parse", "HEAD")


async def field_is(d: DaemonProcess, agent: str, key: str, want: object) -> bool:
    return bool((await status_of(d, agent)).get(key) == want)


async def shows(d: DaemonProcess, agent: str, want: dict[str, Any]) -> bool:
    row = await status_of(d, agent)
    return all(row.get(k) == v for k, v in want.items())


async def spawn_alice_on_b(a: DaemonProcess, b: DaemonProcess, mgr: AgentClient) -> None:
    """The manager asks for alice on node-b; the operator approves on node-a."""
    host_a = HostClient(a.paths.host_sock)
    queued = await mgr.call("request_spawn", name="alice", node="node-b", description="w")
    approved = (await host_a.call("approve", id=queued["id"]))["approval"]
    assert approved["status"] == "approved", approved
    assert "spawned" in approved["note"]
    row = await status_of(a, "alice")
    assert row["node"] == "node-b"
    # B seeded her repo; the manager's node imports it (its /agents/alice)
    await eventually(
        lambda: (a.paths.config_repo("alice") / "agent.toml").is_file(),
        what="alice's repo mirrored to the manager's node",
        timeout=60,
    )
    await eventually(lambda: field_is(b, "alice", "running", True), what="alice runs", timeout=90)


async def test_manager_on_a_changes_config_of_agent_on_b(
    two_nodes: tuple[DaemonProcess, ...],
) -> None:
    a, b = two_nodes
    host_a, host_b = HostClient(a.paths.host_sock), HostClient(b.paths.host_sock)
    await eventually(lambda: all_peers_up(a, {"node-a", "node-b"}), what="nodes up", timeout=60)
    async with AgentClient(a.paths.agent_sock("manager"), retry=NO_RETRY) as mgr:
        await spawn_alice_on_b(a, b, mgr)
        repo = a.paths.config_repo("alice")
        seed = git(repo, "rev-parse", "HEAD")
        assert (await status_of(b, "alice"))["deployed_sha"] == seed[:12]
        sha = commit_model(repo, "sonnet-across")
        queued = await mgr.call("request_apply_commit", agent="alice", sha=sha, description="m")
    aid = queued["id"]
    # the diff shows on node-b too (asked of the manager's node, where the commit is)
    shown = await host_b.call("approval", id=aid)
    assert "sonnet-across" in shown["diff"]
    # the operator approves on node-a: node-b applies exactly the pinned commit and rebuilds
    final = (await host_a.call("approve", id=aid))["approval"]
    assert final["status"] == "approved" and f"applied {sha[:12]}" in final["note"], final
    assert "rebuilt" in final["note"]
    want = {"deployed_sha": sha[:12], "active_model": "sonnet-across", "node": "node-b"}
    for d in (a, b):
        await eventually(lambda d=d: shows(d, "alice", want), what=f"applied on {d}", timeout=60)
    await eventually(lambda: field_is(b, "alice", "running", True), what="running", timeout=90)
    b_repo = b.paths.config_repo("alice")
    assert git(b_repo, "rev-parse", f"refs/tags/deployed/{aid}") == sha
    # applying it twice is refused; rebuild works from either node
    with pytest.raises(Exception, match="already approved"):
        await host_b.call("approve", id=aid)
    await host_a.call("rebuild", name="alice")
    await eventually(lambda: field_is(b, "alice", "running", True), what="rebuilt", timeout=90)
    # a broken commit fails on node-b with the reason, as on one host; nothing changes
    (repo / "agent.toml").write_text("model = [\n")
    git(repo, "commit", "-q", "-am", "broken")
    broken = git(repo, "rev-parse", "HEAD")
    async with AgentClient(a.paths.agent_sock("manager"), retry=NO_RETRY) as mgr:
        bad = (await mgr.call("request_apply_commit", agent="alice", sha=broken))["id"]
    answer = await host_a.request_raw({"cmd": "approve", "id": bad})
    assert answer["ok"] is False and answer["code"] == "approval_failed", answer
    assert "agent.toml" in answer["error"]
    assert (await status_of(b, "alice"))["deployed_sha"] == sha[:12]
    # approved on the agent's own node: it fetches the bundle from the database itself
    fixed = commit_model(repo, "fixed")
    async with AgentClient(a.paths.agent_sock("manager"), retry=NO_RETRY) as mgr:
        last = (await mgr.call("request_apply_commit", agent="alice", sha=fixed))["id"]
    done = (await host_b.call("approve", id=last))["approval"]
    assert f"applied {fixed[:12]}" in done["note"], done
    await eventually(
        lambda: shows(a, "alice", {"deployed_sha": fixed[:12], "active_model": "fixed"}),
        what="seen on node-a",
        timeout=60,
    )


async def test_approved_while_the_agents_node_is_down(
    two_nodes: tuple[DaemonProcess, ...],
) -> None:
    """node-b is down when the operator approves two changes (the newer first): when it is
    back it applies the newer one and never rolls back to the older."""
    a, b = two_nodes
    host_a = HostClient(a.paths.host_sock)
    await eventually(lambda: all_peers_up(a, {"node-a", "node-b"}), what="nodes up", timeout=60)
    async with AgentClient(a.paths.agent_sock("manager"), retry=NO_RETRY) as mgr:
        await spawn_alice_on_b(a, b, mgr)
        repo = a.paths.config_repo("alice")
        older = commit_model(repo, "older")
        first = (await mgr.call("request_apply_commit", agent="alice", sha=older))["id"]
        newer = commit_model(repo, "newer")
        second = (await mgr.call("request_apply_commit", agent="alice", sha=newer))["id"]
    b.stop()
    got = (await host_a.call("approve", id=second))["approval"]
    assert got["status"] == "approved"  # decided; node-b acts when it is back
    got = (await host_a.call("approve", id=first))["approval"]
    assert got["status"] == "approved"
    b.start()
    want = {"deployed_sha": newer[:12], "active_model": "newer"}
    await eventually(lambda: shows(a, "alice", want), what="newer applied", timeout=90)
    await eventually(
        lambda: _note_has(host_a, first, "superseded"), what="older superseded", timeout=60
    )
    await eventually(
        lambda: _note_has(host_a, second, f"applied {newer[:12]}"), what="newer done", timeout=90
    )
    assert (await status_of(b, "alice"))["deployed_sha"] == newer[:12]


async def _note_has(host: HostClient, aid: int, text: str) -> bool:
    rows = (await host.call("pending"))["approvals"]
    return any(r["id"] == aid and text in r["note"] for r in rows)
