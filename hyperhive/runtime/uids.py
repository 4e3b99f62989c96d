"""Per-agent numeric uids: `200000 + n`, persisted so an agent keeps its uid across restarts.

Invariants:
- The table (`{"agent": uid}` JSON) is the only record; it is rewritten atomically under an
  exclusive `flock` on a sibling lock file, so two processes never hand out the same uid.
- A new agent gets the lowest free uid that is neither in the table nor owning a running process
  (a released agent's uid is reused only once nothing runs under it any more).
- No `/etc/passwd` entry is needed: sandboxes get a synthesized passwd naming the uid.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from hyperhive.errors import ConfigError, Unavailable
from hyperhive.names import validate_name

logger = logging.getLogger(__name__)

UID_BASE = 200000
UID_COUNT = 65536  # 200000..265535: far from system and login uids


def uids_in_use() -> set[int]:
    """Real uids of every process visible in /proc."""
    found: set[int] = set()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            found.add(os.stat(entry.path).st_uid)
        except OSError:
            continue  # exited meanwhile
    return found


class UidTable:
    """The persisted name → uid table at `path` (e.g. `HIVE_HOME/uids.json`)."""

    def __init__(self, path: Path, *, base: int = UID_BASE, count: int = UID_COUNT) -> None:
        self.path = path
        self.base = base
        self.count = count

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _read(self) -> dict[str, int]:
        try:
            raw = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise ConfigError(f"uid table {self.path} is unreadable: {exc}") from exc
        if not isinstance(raw, dict):
            raise ConfigError(f"uid table {self.path} must be a JSON object")
        return {str(k): int(v) for k, v in raw.items()}

    def _write(self, table: dict[str, int]) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")
        os.replace(tmp, self.path)

    def get(self, name: str) -> int | None:
        """The agent's uid, or None if it has none yet."""
        return self._read().get(validate_name(name))

    def all(self) -> dict[str, int]:
        return self._read()

    def allocate(self, name: str) -> int:
        """The agent's uid, allocating (and persisting) the lowest free one on first use."""
        validate_name(name)
        with self._locked():
            table = self._read()
            if name in table:
                return table[name]
            taken = set(table.values())
            live = uids_in_use()
            for uid in range(self.base, self.base + self.count):
                if uid not in taken and uid not in live:
                    table[name] = uid
                    self._write(table)
                    logger.info(
                        "allocated uid %d to %s",
                        uid,
                        name,
                        extra={"action": "uid_allocate", "agent": name},
                    )
                    return uid
        raise Unavailable(f"no free agent uid left in {self.base}..{self.base + self.count - 1}")

    def release(self, name: str) -> None:
        """Forget the agent's uid (when the agent is deleted). Idempotent."""
        validate_name(name)
        with self._locked():
            table = self._read()
            if table.pop(name, None) is not None:
                self._write(table)
                logger.info(
                    "released uid of %s", name, extra={"action": "uid_release", "agent": name}
                )
