"""Git in tests: run git as an agent would (own identity, no system or global config) and commit
files, as the manager or an agent would."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


def git(repo: Path, *args: str, who: str = "manager") -> str:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(repo.parent),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_AUTHOR_NAME": who,
        "GIT_AUTHOR_EMAIL": f"{who}@hyperhive",
        "GIT_COMMITTER_NAME": who,
        "GIT_COMMITTER_EMAIL": f"{who}@hyperhive",
    }
    out = subprocess.run(
        ["git", "-c", f"safe.directory={repo}", "-C", str(repo), *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def commit(repo: Path, files: dict[str, str], message: str = "change") -> str:
    for rel, text in files.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def commit_all(repo: Path, message: str) -> str:
    """Commit as the manager would (the repo belongs to the manager's uid)."""
    git = ["git", "-c", "safe.directory=*", "-C", str(repo)]
    subprocess.run(
        [
            *git,
            "-c",
            "user.name=manager",
            "-c",
            "user.email=manager@hyperhive",
            "commit",
            "-qam",
            message,
        ],
        check=True,
    )
    return subprocess.run(
        [*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
