"""Run one Claude Code turn: one `claude -p` process, its stream-json lines, how it ended.

`ClaudeTurn` starts the CLI with a given argv/env/cwd (see `hyperhive.harness.settings`) and
reads stdout in a background task, so `wait()` works whether or not `lines()` is consumed.
Session continuity is one process per turn plus `--continue`; `has_session` says whether there
is a session to continue; `run_compact` runs `/compact` the same way.

Measured with the bundled CLI 2.1.330 (tests/harness/test_claude.py checks each one):
- `/compact` works in `-p --continue` mode: `system/status` compacting lines, `init`,
  `compact_boundary` (trigger "manual"), then a result with `is_error: false`, `num_turns: 0`,
  `local_command: "compact"`; the session id is kept. With no conversation yet the CLI says
  "Error: No messages to compact" (as assistant text, not an error result).
- `--continue` with no session for the cwd does not fail: it starts a fresh session. We still
  pass it only when `has_session` finds one, so a first turn is an honest fresh start.
- SIGINT while waiting for the model: exit 0, and either no result (prompt fed on stdin) or a
  result `error_during_execution` / `aborted_streaming` (prompt in argv). SIGINT while a tool
  runs: the CLI kills the tool, prints a result with `aborted_tools`, exits 0. All three
  classify as `cancelled`. SIGTERM: the CLI stops its background shells and exits 143.
- After its result the CLI waits for `run_in_background` shells and answers each completion
  with another model turn and result; a long-lived background job keeps it alive forever.
- Bash tool shells run in sessions of their own (setsid), outside the CLI's process group.

Invariants:
- The CLI runs in a new session/process group (pgid = its pid); stdin is /dev/null.
- No zombie, no orphan of the CLI's own making on any path: after the CLI exits its group is
  SIGKILLed (stragglers such as MCP servers); a forced stop (interrupt escalation, `close`
  while running, cancellation of the awaiting task) also SIGKILLs every descendant found in
  /proc, since tool shells live in sessions of their own. A process an agent deliberately
  detaches and that outlives a normally exiting CLI is the sandbox's business.
- Escalation: SIGINT → `interrupt_grace` → SIGTERM → `kill_grace` → SIGKILL.
- If the CLI lingers `linger` seconds after a result with no new turn started (background
  shells still running), it gets SIGTERM then SIGKILL; the outcome still comes from the result.
- `close` is idempotent; `wait` returns the same answer every time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from hyperhive.errors import Unavailable
from hyperhive.harness.settings import StrPath, claude_argv, project_dir_name
from hyperhive.harness.stream import (
    OutcomeKind,
    TurnOutcome,
    TurnTally,
    classify,
    read_stream_lines,
)
from hyperhive.harness.streamevents import AssistantText, Event, Result, StreamLine, SystemInit

logger = logging.getLogger(__name__)

_CHUNK = 1 << 16
_PROJECT_NAME_MAX = 200
_READER_JOIN = 5.0  # seconds to wait for pipes to reach EOF once the CLI has exited
_END = None


class ClaudeTurn:
    """One `claude -p` process. Use as `async with ClaudeTurn(argv, env=..., cwd=...) as t:`."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: StrPath | None = None,
        interrupt_grace: float = 10.0,
        kill_grace: float = 5.0,
        linger: float | None = 30.0,
        stderr_tail_chars: int = 8192,
        agent: str | None = None,
    ) -> None:
        if not argv:
            raise ValueError("argv is empty")
        self.argv = list(argv)
        self.env = dict(env) if env is not None else None
        self.cwd = os.fspath(cwd) if cwd is not None else None
        self.interrupt_grace = interrupt_grace
        self.kill_grace = kill_grace
        self.linger = linger
        self.agent = agent
        self.tally = TurnTally()
        self._stderr: deque[str] = deque()
        self._stderr_chars = 0
        self._stderr_max = stderr_tail_chars
        self._proc: asyncio.subprocess.Process | None = None
        self._queue: asyncio.Queue[StreamLine | None] = asyncio.Queue()
        self._readers: list[asyncio.Task[None]] = []
        self._linger_task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()  # a result came and no new turn started since
        self._busy = asyncio.Event()  # a turn (init) started and its result has not come
        self._interrupted = False
        self._lingered = False
        self._reading = False
        self._ended = False
        self._closed = False
        self._outcome: TurnOutcome | None = None

    # -- lifecycle --------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Start the CLI; raises `Unavailable` when it cannot be executed."""
        if self._proc is not None or self._closed:
            raise RuntimeError("a ClaudeTurn runs once")
        try:
            self._proc = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )
        except OSError as exc:
            raise Unavailable(f"cannot start {self.argv[0]}: {exc.strerror or exc}") from exc
        pid = self._proc.pid
        self._log(logging.DEBUG, "claude started (pid %d)", pid, action="claude.start")
        self._readers = [
            asyncio.create_task(self._read_stdout(), name=f"claude-stdout:{pid}"),
            asyncio.create_task(self._read_stderr(), name=f"claude-stderr:{pid}"),
        ]
        if self.linger is not None:
            self._linger_task = asyncio.create_task(
                self._watch_linger(self.linger), name=f"claude-linger:{pid}"
            )

    async def close(self) -> None:
        """Stop the CLI if it still runs (SIGTERM, then SIGKILL), reap it, end the readers."""
        if self._closed:
            return
        self._closed = True
        proc = self._proc
        if proc is None:
            return
        try:
            if proc.returncode is None:
                self._log(logging.INFO, "stopping a running claude", action="claude.close")
                await self._escalate(signal.SIGTERM)
            await self._settle()
        except BaseException:
            self._kill_all()
            for task in self._tasks():
                task.cancel()
            raise

    # -- state ------------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode if self._proc is not None else None

    @property
    def interrupted(self) -> bool:
        return self._interrupted

    @property
    def lingered(self) -> bool:
        """True when the CLI was stopped for lingering after its result."""
        return self._lingered

    @property
    def stderr_tail(self) -> str:
        return "".join(self._stderr)

    # -- reading ----------------------------------------------------------------------------

    async def lines(self) -> AsyncIterator[StreamLine]:
        """Every stdout line as it arrives, parsed: `async for raw, events in turn.lines()`.

        One consumer only; it ends when the CLI closes stdout."""
        if self._reading:
            raise RuntimeError("ClaudeTurn.lines() is already being consumed")
        self._require_started()
        self._reading = True
        while not self._ended:
            line = await self._queue.get()
            if line is _END:
                self._ended = True
                break
            yield line

    async def events(self) -> AsyncIterator[Event]:
        """The events of `lines()`, flattened."""
        async for line in self.lines():
            for event in line.events:
                yield event

    async def _read_stdout(self) -> None:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        try:
            async for line in read_stream_lines(proc.stdout, _CHUNK):
                self._accept(line)
        finally:
            self._queue.put_nowait(_END)

    def _accept(self, line: StreamLine) -> None:
        for event in line.events:
            self.tally.feed(event)
            if isinstance(event, Result):
                self._busy.clear()
                self._idle.set()
            elif isinstance(event, SystemInit):
                self._idle.clear()
                self._busy.set()
        self._queue.put_nowait(line)

    async def _read_stderr(self) -> None:
        proc = self._proc
        assert proc is not None and proc.stderr is not None
        while True:
            chunk = await proc.stderr.read(_CHUNK)
            if not chunk:
                return
            text = chunk.decode("utf-8", errors="replace")
            self._stderr.append(text)
            self._stderr_chars += len(text)
            while self._stderr_chars > self._stderr_max and len(self._stderr) > 1:
                self._stderr_chars -= len(self._stderr.popleft())
            if self._stderr_chars > self._stderr_max:  # one huge chunk: keep its end
                only = self._stderr.pop()[-self._stderr_max :]
                self._stderr.append(only)
                self._stderr_chars = len(only)

    async def _watch_linger(self, linger: float) -> None:
        proc = self._proc
        assert proc is not None
        while proc.returncode is None:
            await self._idle.wait()
            try:
                async with asyncio.timeout(linger):
                    await self._busy.wait()
                continue  # another turn started (a background task finished): let it run
            except TimeoutError:
                pass
            if proc.returncode is None and self._idle.is_set():
                self._lingered = True
                self._log(
                    logging.INFO,
                    "claude still running %g s after its result (background tasks?); stopping",
                    linger,
                    action="claude.linger",
                )
                await self._escalate(signal.SIGTERM)
            return

    # -- control ----------------------------------------------------------------------------

    async def interrupt(self) -> None:
        """Interrupt the turn (SIGINT) and wait until the CLI is gone, escalating to SIGTERM
        after `interrupt_grace` and SIGKILL after `kill_grace`. No-op once it has exited."""
        self._require_started()
        assert self._proc is not None
        if self._proc.returncode is not None:
            return
        self._interrupted = True
        self._log(logging.INFO, "interrupting claude", action="claude.interrupt")
        await self._escalate(signal.SIGINT)

    async def wait(self) -> tuple[TurnOutcome, TurnTally]:
        """Wait for the CLI to exit; its outcome and tally. Cancelling the caller kills it."""
        self._require_started()
        if self._outcome is not None:
            return self._outcome, self.tally
        proc = self._proc
        assert proc is not None
        try:
            await proc.wait()
            await self._settle()
        except BaseException:
            self._kill_all()
            raise
        outcome = classify(
            self.tally.result,
            self.stderr_tail,
            exit_code=proc.returncode,
            interrupted=self._interrupted,
        )
        self._outcome = outcome
        self._log(
            logging.INFO if outcome.ok else logging.WARNING,
            "claude turn ended: %s%s",
            outcome.kind.value,
            f" ({outcome.note})" if outcome.note else "",
            action="claude.end",
        )
        return outcome, self.tally

    async def _escalate(self, first: signal.Signals) -> None:
        """Send `first`, then SIGTERM, then SIGKILL (with descendants) until the CLI exits."""
        proc = self._proc
        assert proc is not None
        steps: list[tuple[signal.Signals, float]] = []
        if first is signal.SIGINT:
            steps.append((signal.SIGINT, self.interrupt_grace))
        steps.append((signal.SIGTERM, self.kill_grace))
        try:
            for sig, grace in steps:
                if proc.returncode is not None:
                    return
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(sig)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(grace):
                        await proc.wait()
                        return
                self._log(
                    logging.WARNING,
                    "claude ignored %s for %g s",
                    sig.name,
                    grace,
                    action="claude.escalate",
                )
            self._kill_all()
            await proc.wait()
        except BaseException:
            self._kill_all()
            raise

    async def _settle(self) -> None:
        """After the CLI exited: kill stragglers in its group, let the readers reach EOF."""
        proc = self._proc
        assert proc is not None
        await proc.wait()
        _killpg(proc.pid)
        if self._linger_task is not None and self._linger_task is not asyncio.current_task():
            self._linger_task.cancel()
        if self._readers:
            _done, pending = await asyncio.wait(self._readers, timeout=_READER_JOIN)
            for task in pending:
                self._log(
                    logging.WARNING,
                    "%s did not reach EOF; something still holds the pipe",
                    task.get_name(),
                    action="claude.pipe_held",
                )
                task.cancel()
        others = [t for t in self._tasks() if t is not asyncio.current_task()]
        await asyncio.gather(*others, return_exceptions=True)
        if not self._ended and self._queue.empty():
            self._queue.put_nowait(_END)  # a cancelled reader could not say so itself

    def _kill_all(self) -> None:
        """SIGKILL the CLI, every descendant (tool shells have their own sessions) and its
        group. Synchronous, so it also runs on the way out of a cancelled task."""
        proc = self._proc
        if proc is None or proc.returncode is not None:
            if proc is not None:
                _killpg(proc.pid)
            return
        victims = _descendants(proc.pid)
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        for pid in victims:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        _killpg(proc.pid)

    def _tasks(self) -> list[asyncio.Task[None]]:
        linger = [self._linger_task] if self._linger_task is not None else []
        return [*self._readers, *linger]

    def _require_started(self) -> None:
        if self._proc is None:
            raise RuntimeError("ClaudeTurn is not started")

    def _log(self, level: int, msg: str, *args: object, action: str) -> None:
        logger.log(level, msg, *args, extra={"action": action, "agent": self.agent})


def _killpg(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _descendants(root: int) -> list[int]:
    """Every live descendant of `root`, read from /proc (empty where there is none)."""
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 1:
            children.setdefault(int(fields[1]), []).append(int(entry))
    found: list[int] = []
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


# -- sessions and compaction ----------------------------------------------------------------


def has_session(config_dir: StrPath, cwd: StrPath) -> bool:
    """Whether the CLI has a stored session for `cwd` (what `--continue` would pick up):
    `$CLAUDE_CONFIG_DIR/projects/<cwd with every non-alphanumeric as ->/*.jsonl`."""
    projects = Path(config_dir) / "projects"
    if not projects.is_dir():
        return False
    names = {project_dir_name(cwd), project_dir_name(os.path.realpath(cwd))}
    for name in names:
        candidates = [projects / name]
        if len(name) >= _PROJECT_NAME_MAX:
            # past 200 characters the CLI appends "-<hash>" to the 200-character prefix
            candidates += projects.glob(f"{name}-*")
        if any(d.is_dir() and any(d.glob("*.jsonl")) for d in candidates):
            return True
    return False


async def run_compact(
    binary: StrPath,
    *,
    env: Mapping[str, str] | None,
    cwd: StrPath,
    model: str | None = None,
    settings_path: StrPath | None = None,
    mcp_path: StrPath | None = None,
    system_prompt_path: StrPath | None = None,
    instructions: str = "",
    on_line: Callable[[StreamLine], None] | None = None,
    agent: str | None = None,
) -> tuple[TurnOutcome, TurnTally]:
    """Compact the session of `cwd`: `claude -p --continue -- "/compact [instructions]"`.

    `ok` only when the CLI reports a compact boundary; a run that compacted nothing (no
    conversation yet: "Error: No messages to compact") is `failed` with the CLI's words as the
    note. `on_line` sees every line (to publish it)."""
    prompt = f"/compact {instructions}".strip()
    argv = claude_argv(
        binary,
        prompt=prompt,
        model=model,
        settings_path=settings_path,
        mcp_path=mcp_path,
        system_prompt_path=system_prompt_path,
        continue_session=True,
    )
    said = ""
    async with ClaudeTurn(argv, env=env, cwd=cwd, agent=agent) as turn:
        async for line in turn.lines():
            said = next((e.text for e in line.events if isinstance(e, AssistantText)), said)
            if on_line is not None:
                on_line(line)
        outcome, tally = await turn.wait()
    if outcome.ok and tally.compactions == 0:
        # e.g. a fresh session: the CLI answers "Error: No messages to compact", not an error
        result_text = tally.result.result if tally.result is not None else None
        outcome = TurnOutcome(OutcomeKind.FAILED, result_text or said or "nothing was compacted")
    return outcome, tally
