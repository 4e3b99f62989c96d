"""Which failed turns are tried again, when, with what prompt; notes naming the endpoint; the
wait before a retry ends on cancel and on stop."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from hyperhive.harness.loop import Harness
from hyperhive.harness.options import HarnessOptions
from hyperhive.harness.retry import (
    TurnRetry,
    prompt_recorded,
    public_note,
    retry_prompt,
    transient,
)
from hyperhive.harness.stream import OutcomeKind, TurnOutcome
from tests.support.waiting import eventually

FAILED_500 = TurnOutcome(OutcomeKind.FAILED, "API Error: 500 boom. This is a server-side issue")
FAILED_401 = TurnOutcome(OutcomeKind.FAILED, "Invalid API key · Fix external API key")
LIMITED = TurnOutcome(OutcomeKind.RATE_LIMITED, "API Error: Request rejected (429)")
CANCELLED = TurnOutcome(OutcomeKind.CANCELLED, "interrupted")


@pytest.mark.parametrize(
    ("outcome", "timed_out", "expected"),
    [
        (FAILED_500, False, True),
        (TurnOutcome(OutcomeKind.FAILED, "API Error: 529 Overloaded"), False, True),
        (
            TurnOutcome(OutcomeKind.FAILED, "Unable to connect to API (ConnectionRefused)"),
            False,
            True,
        ),
        (LIMITED, False, True),
        (TurnOutcome(OutcomeKind.FAILED, "Service unavailable (HTTP 503)"), False, True),
        (FAILED_401, False, False),
        (TurnOutcome(OutcomeKind.FAILED, "API Error: 400 max_tokens: 512 > 256"), False, False),
        (TurnOutcome(OutcomeKind.FAILED, "reached the --max-turns limit"), False, False),
        (CANCELLED, False, False),  # the operator's cancel is final
        (CANCELLED, True, True),  # our own turn timeout is not
        (TurnOutcome(OutcomeKind.OK), False, False),
    ],
)
def test_transient(outcome: TurnOutcome, timed_out: bool, expected: bool) -> None:
    assert transient(outcome, timed_out=timed_out) is expected


def test_delay_doubles_is_capped_and_honours_rate_limits() -> None:
    retry = TurnRetry(attempts=3, wait=10, rate_limit_wait=60)
    assert retry.delay(1, FAILED_500) == 10
    assert retry.delay(2, FAILED_500) == 20
    assert retry.delay(3, FAILED_500) is None  # attempts spent
    assert retry.delay(1, FAILED_401) is None  # not transient
    assert retry.delay(1, LIMITED) == 60
    assert retry.delay(1, LIMITED, hint=90) == 90  # the endpoint's retry-after wins
    assert retry.delay(1, CANCELLED) is None
    assert retry.delay(1, CANCELLED, timed_out=True) == 10


def session_line(kind: str, content: object) -> str:
    return json.dumps({"type": kind, "message": {"role": kind, "content": content}})


def test_prompt_recorded_reads_the_newest_session(tmp_path: Path) -> None:
    assert not prompt_recorded(tmp_path / "missing", "hi")
    old = tmp_path / "old.jsonl"
    old.write_text(session_line("user", "the prompt") + "\n")
    new = tmp_path / "new.jsonl"
    blocks = [{"type": "text", "text": "other"}]
    new.write_text(session_line("user", blocks) + "\n" + session_line("assistant", "x") + "\n")
    stamp = old.stat().st_mtime
    os.utime(new, (stamp + 10, stamp + 10))
    assert not prompt_recorded(tmp_path, "the prompt")  # only in an older session
    with new.open("a") as f:
        f.write(session_line("user", [{"type": "text", "text": "the prompt"}]) + "\n")
    os.utime(new, (stamp + 20, stamp + 20))
    assert prompt_recorded(tmp_path, "the prompt")


def test_retry_prompt_does_not_repeat_and_says_which_attempt() -> None:
    text = retry_prompt("API Error: 500 boom", 2, 3)
    assert "attempt 2 of 3" in text and "500 boom" in text and "not repeated" in text


def test_public_note_names_the_configured_endpoint() -> None:
    note = "check your inference gateway (127.0.0.1:41234). Also http://127.0.0.1:41234/a/alice"
    out = public_note(note, "http://127.0.0.1:41234/a/alice", "http://10.0.0.5:8787/a/alice")
    assert "41234" not in out
    assert "(10.0.0.5:8787)" in out and "http://10.0.0.5:8787/a/alice" in out
    assert public_note("plain", None, "http://x") == "plain"


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    return Harness(HarnessOptions(socket=tmp_path / "none.sock", state_dir=tmp_path))


async def test_cancel_ends_the_wait_before_a_retry(harness: Harness) -> None:
    """Was: a cancel between attempts answered `cancelled: false` and the loop went on."""
    assert await harness.cancel() is False  # nothing running, nothing waiting
    async with harness.bus:
        waiting = asyncio.create_task(harness._wait_to_retry(600))
        await eventually(lambda: harness._retry_cancel is not None, 30, "the wait to begin")
        assert await harness.cancel() is True
        assert await asyncio.wait_for(waiting, 30) is False
        assert harness._retry_cancel is None


async def test_stop_ends_the_wait_before_a_retry(harness: Harness) -> None:
    async with harness.bus:
        waiting = asyncio.create_task(harness._wait_to_retry(600))
        await eventually(lambda: harness._retry_cancel is not None, 30, "the wait to begin")
        harness.stop()
        assert await asyncio.wait_for(waiting, 30) is False


async def test_the_wait_runs_out(harness: Harness) -> None:
    async with harness.bus:
        assert await harness._wait_to_retry(0.01) is True
