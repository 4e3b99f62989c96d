"""safefs: no host-side touch of an agent-writable path follows a link or blocks on a fifo."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from hyperhive import safefs
from hyperhive.core.logs import read_logs
from hyperhive.core.tombstones import list_tombstones


def _tree(tmp: Path) -> tuple[Path, Path]:
    root = tmp / "root"
    (root / "d").mkdir(parents=True)
    (root / "d" / "f").write_text("inside")
    secret = tmp / "secret"
    secret.write_text("host secret")
    return root, secret


def test_reads_refuse_links_at_every_component(tmp_path: Path) -> None:
    root, secret = _tree(tmp_path)
    assert safefs.read_bytes(root, "d/f") == b"inside"
    (root / "link").symlink_to(secret)
    (root / "dlink").symlink_to(tmp_path)
    assert safefs.read_bytes(root, "link") is None
    assert safefs.read_bytes(root, "dlink/secret") is None  # a linked directory on the way
    assert not safefs.is_regular(root, "link") and safefs.is_regular(root, "d/f")
    assert safefs.lstat_under(root, "dlink/secret") is None
    with pytest.raises(OSError):
        safefs.open_under(root, "../secret")
    linked_root = tmp_path / "lroot"
    linked_root.symlink_to(root)
    assert safefs.read_bytes(linked_root, "d/f") is None  # the root itself must be real


def test_a_fifo_reads_as_nothing_without_blocking(tmp_path: Path) -> None:
    root, _ = _tree(tmp_path)
    os.mkfifo(root / "fifo")
    assert safefs.read_bytes(root, "fifo") is None
    assert safefs.read_tail(root, "fifo", 10) is None


def test_remove_and_own_dir_never_follow(tmp_path: Path) -> None:
    root, secret = _tree(tmp_path)
    (root / "d" / "escape").symlink_to(tmp_path)
    safefs.remove(root / "d")  # a tree holding a link to the outside
    assert not (root / "d").exists() and secret.read_text() == "host secret"
    (root / "sock").symlink_to(secret)
    safefs.prepare_socket(root / "sock")
    assert not (root / "sock").is_symlink() and secret.exists()
    (root / "w").symlink_to(tmp_path)
    safefs.own_dir(root / "w", os.getuid(), os.getgid(), 0o700)
    assert (root / "w").is_dir() and not (root / "w").is_symlink()
    assert (root / "w").stat().st_mode & 0o777 == 0o700


async def test_tombstones_and_logs_ignore_planted_links(tmp_path: Path) -> None:
    _root, secret = _tree(tmp_path)
    agents = tmp_path / "agents"
    claude = agents / "gone" / "state" / ".claude"
    claude.mkdir(parents=True)
    (claude / ".credentials.json").symlink_to(secret)
    (agents / "gone" / "state" / "big").symlink_to(tmp_path)
    hive = SimpleNamespace(
        paths=SimpleNamespace(agents_dir=agents), registry=SimpleNamespace(names=lambda: [])
    )
    (view,) = await list_tombstones(hive)  # type: ignore[arg-type]
    assert view.name == "gone" and not view.credentials_kept
    logs = agents / "gone" / "logs"
    logs.mkdir()
    (logs / "harness.log").symlink_to(secret)
    (logs / "exit.json").symlink_to(secret)
    assert read_logs(logs, "harness", 10) == []
    assert read_logs(logs, "sandbox", 10) == []
