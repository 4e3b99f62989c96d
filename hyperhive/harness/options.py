"""What one harness runs with (`HarnessOptions`): sockets, state dir, the CLI binary, the model
endpoint and the retry/timeout policy, read from `hive agent serve`'s environment.

Invariants:
- Plain data: no I/O but `from_env` reading the API key file once; no pydantic (the harness's
  start path never imports it, `harness/main.py`).
- `base_url` is what the CLI talks to (the in-sandbox tunnel once `main.py` set it up);
  `endpoint` is the configured model endpoint, the only address notes ever name.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from hyperhive.harness.retry import TurnRetry


@dataclass
class HarnessOptions:
    socket: Path
    state_dir: Path
    web_socket: Path | None = None
    claude_bin: Path | None = None
    base_url: str | None = None  # what the CLI talks to (the tunnel, once main.py set it up)
    api_key: str | None = None
    endpoint: str | None = None  # the configured model endpoint, as notes should name it
    model_retries: int = 4  # CLAUDE_CODE_MAX_RETRIES: the CLI's retries of one request
    turn_retry: TurnRetry = field(default_factory=TurnRetry)
    turn_timeout: float = 0.0  # seconds; 0 = no limit of our own
    warm_seconds: float = 600.0  # keep claude alive this long between turns; 0 = per turn
    python: str = field(default_factory=lambda: sys.executable)

    @classmethod
    def from_env(cls, socket: Path, state_dir: Path, web_socket: Path | None) -> HarnessOptions:
        key_file = os.environ.get("HIVE_API_KEY_FILE")
        key = os.environ.get("HIVE_API_KEY") or (
            Path(key_file).read_text().strip() if key_file and Path(key_file).exists() else None
        )
        env = os.environ
        base_url = env.get("HIVE_MODEL_BASE_URL") or None
        return cls(
            socket=socket,
            state_dir=state_dir,
            web_socket=web_socket,
            claude_bin=Path(env["HIVE_CLAUDE_BIN"]) if env.get("HIVE_CLAUDE_BIN") else None,
            base_url=base_url,
            api_key=key,
            endpoint=base_url,
            model_retries=int(env.get("HIVE_MODEL_RETRIES", "4")),
            turn_retry=TurnRetry(
                attempts=int(env.get("HIVE_TURN_ATTEMPTS", "3")),
                wait=float(env.get("HIVE_RETRY_WAIT", "30")),
                rate_limit_wait=float(env.get("HIVE_RATE_LIMIT_WAIT", "300")),
            ),
            turn_timeout=float(env.get("HIVE_TURN_TIMEOUT", "0")),
            warm_seconds=float(env.get("HIVE_WARM_SECONDS", "600")),
        )
