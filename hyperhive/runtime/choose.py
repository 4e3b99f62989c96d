"""Choosing a runtime: which backends exist, which works on this machine, and making one.

`sandbox_support()` runs one tiny real sandbox (cached) and returns None when bubblewrap works
here, else the reason — tests print it when they skip, and `default_runtime_name()` falls back
to the unisolated `process` runtime with a warning.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import subprocess
from typing import Any

from hyperhive.errors import ConfigError
from hyperhive.runtime.base import Runtime

logger = logging.getLogger(__name__)

RUNTIMES = ("bwrap", "process", "external", "fake")


def available_runtimes() -> list[str]:
    """Backends usable here: `bwrap` only when sandboxes really start."""
    return [n for n in RUNTIMES if n != "bwrap" or sandbox_support() is None]


@functools.cache
def sandbox_support() -> str | None:
    """None if bubblewrap sandboxes work on this machine, else why not (one line)."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return "bubblewrap is not installed (apt-get install bubblewrap)"
    root = os.geteuid() == 0
    if root:
        for tool in ("setpriv", "nsenter"):
            if shutil.which(tool) is None:
                return f"{tool} is not installed (apt-get install util-linux)"
        ns = ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-net"]
    else:
        ns = ["--unshare-all"]
    argv = [bwrap, *ns, "--ro-bind", "/usr", "/usr"]
    for top in ("bin", "lib", "lib64", "sbin"):
        path = f"/{top}"
        if os.path.islink(path):
            argv += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            argv += ["--ro-bind", path, path]
    argv += ["--proc", "/proc", "--dev", "/dev", "--", "/usr/bin/true"]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bwrap could not run: {exc}"
    if proc.returncode != 0:
        err = proc.stderr.strip().splitlines()
        return f"bwrap cannot create namespaces here: {err[-1] if err else proc.returncode}"
    return None


def egress_support() -> str | None:
    """None if `network = "egress"` can work here, else why not."""
    if os.geteuid() != 0:
        return "egress networking needs a root daemon (ip netns add)"
    for tool in ("ip", "slirp4netns", "nsenter"):
        if shutil.which(tool) is None and shutil.which(tool, path="/usr/sbin:/sbin") is None:
            return f"{tool} is not installed"
    if not os.path.exists("/dev/net/tun"):
        return "/dev/net/tun is missing"
    return sandbox_support()


def default_runtime_name() -> str:
    """`bwrap` when sandboxes work here, else `process` (with a warning)."""
    why = sandbox_support()
    if why is None:
        return "bwrap"
    logger.warning(
        "sandboxes unavailable (%s): agents will run UNISOLATED with the process runtime",
        why,
        extra={"action": "runtime_fallback", "agent": ""},
    )
    return "process"


def make_runtime(name: str | None = None, **options: Any) -> Runtime:
    """A runtime by name (`None` = the default here); options go to its constructor."""
    name = name or default_runtime_name()
    if name == "bwrap":
        from hyperhive.runtime.bwrap import BwrapRuntime

        return BwrapRuntime(**options)
    if name == "process":
        from hyperhive.runtime.process import ProcessRuntime

        return ProcessRuntime(**options)
    if name == "external":
        from hyperhive.runtime.external import ExternalRuntime

        return ExternalRuntime(**options)
    if name == "fake":
        from hyperhive.runtime.fake import FakeRuntime

        return FakeRuntime(**options)
    raise ConfigError(f"runtime: unknown runtime {name!r}; choose one of {', '.join(RUNTIMES)}")
