"""Model-side failures of a turn: which ones earn another attempt, how long to wait first, what
the next attempt says, and notes that name the configured endpoint.

Two layers retry a failing model:
- inside one turn, the CLI retries each request (429, 5xx, 529, connection errors) with its own
  backoff, honouring `retry-after`, up to `CLAUDE_CODE_MAX_RETRIES` (`model_endpoint.retries`);
  those retries resend one request, never the prompt;
- when the turn still fails, the harness runs it again (`TurnRetry`), holding the wake message,
  up to `turn_attempts` attempts; then it gives up and reports.

Invariants:
- Only transient failures are attempted again: rate limits, HTTP 408/409/429/5xx/529,
  connection errors, a turn stopped by our own `turn_timeout_seconds`, and a warm `claude`
  process that died mid-turn (`harness/warm.py`: the next attempt starts a fresh one). A 401, a bad request
  or `--max-turns` fails for good at once. A cancel by the operator is never retried.
- The wait before attempt n+1 is `wait * 2**(n-1)`; a rate-limited attempt waits at least
  `rate_limit_wait` and at least the endpoint's last `retry-after` (`hint`).
- A failed attempt whose prompt reached the session (the CLI stores the user message before it
  calls the model) is followed by a short `retry_prompt`, never by the prompt again: the session
  already holds it, and the model should see it once.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from hyperhive.harness.stream import OutcomeKind, TurnOutcome

TRANSIENT_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
# a status only where the CLI or `classify` puts one ("API Error: 529 ...", "(HTTP 503)"), so
# a number in an error's text (`max_tokens: 512`) does not make a bad request look transient
_TRANSIENT_TEXT = re.compile(
    r"(api error:|\(http) (408|409|429|5\d\d)\b|overloaded|rate[ _-]?limit|unable to connect|"
    r"connection (error|refused|reset|closed)|econnreset|econnrefused|socket hang up|timed? ?out|"
    r"claude exited mid-turn",
    re.IGNORECASE,
)
_TAIL_BYTES = 1 << 20  # how much of a session file `prompt_recorded` reads from its end


@dataclass(frozen=True)
class TurnRetry:
    """How often and when a failed turn is run again (`model_endpoint` in hive.toml)."""

    attempts: int = 3
    wait: float = 30.0
    rate_limit_wait: float = 300.0

    def delay(
        self, attempt: int, outcome: TurnOutcome, *, timed_out: bool = False, hint: float = 0.0
    ) -> float | None:
        """Seconds to wait before attempt `attempt + 1`; None: give up (not transient, or the
        attempts are spent)."""
        if attempt >= self.attempts or not transient(outcome, timed_out=timed_out):
            return None
        wait: float = self.wait * 2.0 ** (attempt - 1)
        if outcome.kind is OutcomeKind.RATE_LIMITED:
            wait = max(wait, self.rate_limit_wait)
        return max(wait, hint)


def transient(outcome: TurnOutcome, *, timed_out: bool = False) -> bool:
    """Whether another attempt may go better (see the module's invariants)."""
    if outcome.kind is OutcomeKind.RATE_LIMITED:
        return True
    if outcome.kind is OutcomeKind.CANCELLED:
        return timed_out
    return outcome.kind is OutcomeKind.FAILED and bool(_TRANSIENT_TEXT.search(outcome.note))


def retry_prompt(note: str, attempt: int, attempts: int) -> str:
    """What attempt `attempt` says when the session already holds the wake prompt."""
    return (
        f"(hive: the previous attempt at the message above ended early: {note}. This is attempt "
        f"{attempt} of {attempts}. The message is not repeated here; carry on with it.)"
    )


def prompt_recorded(session_dir: Path, prompt: str) -> bool:
    """Whether the newest session file in `session_dir` (the CLI's project folder for the
    agent's cwd) holds a user message whose text is `prompt`."""
    try:
        files = sorted(session_dir.glob("*.jsonl"), key=lambda f: f.stat().st_mtime)
    except OSError:
        return False
    if not files:
        return False
    try:
        with files[-1].open("rb") as f:
            f.seek(max(0, f.seek(0, 2) - _TAIL_BYTES))
            tail = f.read()
    except OSError:
        return False
    for line in reversed(tail.splitlines()):
        if b'"user"' not in line:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("type") == "user":
            if _user_text(entry.get("message")) == prompt:
                return True
    return False


def _user_text(message: object) -> str:
    if not isinstance(message, dict):
        return ""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [b.get("text") for b in content if isinstance(b, dict) and b.get("type") == "text"]
        return "\n".join(t for t in texts if isinstance(t, str))
    return ""


def public_note(note: str, tunnel_url: str | None, endpoint: str | None) -> str:
    """`note` with the in-sandbox tunnel's address replaced by the configured endpoint (the
    CLI names the address it talked to: `127.0.0.1:<tunnel port>` means nothing outside)."""
    if not note or not tunnel_url or not endpoint or tunnel_url == endpoint:
        return note
    note = note.replace(tunnel_url.rstrip("/"), endpoint.rstrip("/"))
    inside, outside = urlsplit(tunnel_url).netloc, urlsplit(endpoint).netloc
    if inside and outside and inside != outside:
        note = note.replace(inside, outside)
    return note
