"""Finding the `claude` CLI: the one resolver, used by the harness (what it runs), the bwrap
runtime (what it binds into every sandbox), the lifecycle (what it hands the harness) and
`hive login`. A neutral module: it imports nothing of ours but `errors`.

Order: `HIVE_CLAUDE_BIN` in the environment, else `[defaults] claude_bin` in hive.toml (passed
in as `configured`), else the CLI bundled with the installed `claude_agent_sdk`, else `claude`
on PATH. A named binary (the first two) must be an executable file, or resolving fails saying
so: a typo never silently falls back to another CLI.

Invariant: the daemon resolves once per agent start and hands the harness the resolved path
(`HIVE_CLAUDE_BIN`), binding that same path into a sandbox, so the harness inside runs exactly
the binary the core found.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from pathlib import Path

from hyperhive.errors import Unavailable

ENV = "HIVE_CLAUDE_BIN"


def find_claude_binary(environ: Mapping[str, str] | None = None, configured: str = "") -> Path:
    """The claude CLI to run (see the module docstring for the order). Raises `Unavailable`
    saying what was tried."""
    environ = os.environ if environ is None else environ
    for source, named in ((ENV, environ.get(ENV, "")), ("[defaults] claude_bin", configured)):
        if named:
            path = Path(named)
            if path.is_file() and os.access(path, os.X_OK):
                return path
            raise Unavailable(f"{source}={named} is not an executable file")
    bundled = _bundled_binary()
    if bundled is not None:
        return bundled
    import shutil  # only here: the harness would carry it (and bz2, lzma) for this fallback

    found = shutil.which("claude", path=environ.get("PATH"))
    if found:
        return Path(found)
    raise Unavailable(
        f"no claude CLI found: set {ENV} or [defaults] claude_bin in hive.toml, install "
        "claude-agent-sdk (it bundles one) or put `claude` on PATH"
    )


def claude_binary_or_none(
    environ: Mapping[str, str] | None = None, configured: str = ""
) -> Path | None:
    """`find_claude_binary`, fully resolved (symlinks followed: the path a sandbox binds), or
    None when there is none."""
    try:
        return find_claude_binary(environ, configured).resolve()
    except Unavailable:
        return None


def _bundled_binary() -> Path | None:
    # find_spec locates the package without importing it (the import pulls in anyio and mcp).
    try:
        spec = importlib.util.find_spec("claude_agent_sdk")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "_bundled" / "claude"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None
