"""A warm `claude` process: one CLI kept alive across turns, spoken to over the control
protocol the claude-agent-sdk speaks (`--input-format stream-json`, `--permission-prompt-tool
stdio`).

`WarmClaude` starts the CLI once; `turn(prompt)` writes one user message and gives a
`WarmTurn` whose `lines()` / `wait()` / `interrupt()` mirror `ClaudeTurn`'s, so the harness
loop drives either the same way. The turn ends at its `result` line; the process stays up for
the next one. Closing stdin ends the process: exit 0, or 1 when its last turn ended in an
error result (an interrupted one included), as in `-p` mode.

Protocol, as the real CLI speaks it (claude-code.md "Streaming input and interrupts", captures
`multiturn`, `queue`, `interrupt`, `can_use_tool`, `initialize`):
- host → CLI: `{"type":"control_request","request_id":..,"request":{"subtype":"initialize"}}`
  first, then one `{"type":"user","message":{"role":"user","content":..}}` line per turn;
  `{"subtype":"interrupt"}` cuts the running turn short: the CLI answers with a
  `control_response`, then a result `error_during_execution` / `aborted_streaming` (classified
  `cancelled`), and stays usable.
- CLI → host: `control_request` `can_use_tool` (tool_name, input, tool_use_id,
  decision_reason) for a tool the allow/deny lists leave undecided; the host answers
  `{"behavior":"allow","updatedInput":..}` or `{"behavior":"deny","message":..}`. The answer
  comes from the `PermissionGate` (`harness/permgate.py`), which may take as long as it needs.

Invariants:
- One turn at a time; a line arriving while no turn runs (a background shell's completion
  turn) goes to `on_stray`, never into the next turn's tally.
- A turn whose process dies before its result ends `failed` ("claude exited mid-turn ..."),
  unless we interrupted it (then `cancelled`): the caller retries it on a fresh process.
- Every control request from the CLI gets exactly one answer; a gate that raises denies.
- The CLI runs in its own session (pgid = pid). Closing: stdin closed → `exit_grace` →
  SIGTERM → `kill_grace` → SIGKILL of the CLI and every descendant found in /proc. A turn
  abandoned mid-way (its awaiting task cancelled) kills the process: its state is unknown.
- `close` is idempotent; `exited` is set once the process is gone and its pipes are drained.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import signal
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Self

from hyperhive.errors import Unavailable
from hyperhive.harness.claude import _descendants, _killpg
from hyperhive.harness.permgate import Allow, AllowAll, PermissionAsk, PermissionGate
from hyperhive.harness.settings import StrPath
from hyperhive.harness.stream import (
    OutcomeKind,
    TurnOutcome,
    TurnTally,
    classify,
    read_stream_lines,
)
from hyperhive.harness.streamevents import ControlRequest, ControlResponse, Result, StreamLine

logger = logging.getLogger(__name__)

_CHUNK = 1 << 16
_READER_JOIN = 5.0
_END = None
_ids = itertools.count(1)


class WarmTurn:
    """One turn on a `WarmClaude`: the lines from the user message to its `result`."""

    def __init__(self, owner: WarmClaude) -> None:
        self.owner = owner
        self.tally = TurnTally()
        self._queue: asyncio.Queue[StreamLine | None] = asyncio.Queue()
        self._done = asyncio.Event()
        self._reading = False
        self._interrupted = False
        self._outcome: TurnOutcome | None = None

    @property
    def ended(self) -> bool:
        return self._done.is_set()

    @property
    def interrupted(self) -> bool:
        return self._interrupted

    def _accept(self, line: StreamLine) -> None:
        for event in line.events:
            self.tally.feed(event)
        self._queue.put_nowait(line)
        if any(isinstance(e, Result) for e in line.events):
            self._finish()

    def _finish(self) -> None:
        if not self._done.is_set():
            self._done.set()
            self._queue.put_nowait(_END)

    async def lines(self) -> AsyncIterator[StreamLine]:
        """This turn's stdout lines, parsed, up to and including its result (one consumer)."""
        if self._reading:
            raise RuntimeError("WarmTurn.lines() is already being consumed")
        self._reading = True
        while True:
            line = await self._queue.get()
            if line is _END:
                return
            yield line

    async def wait(self) -> tuple[TurnOutcome, TurnTally]:
        """Wait for the result (or the process's end); the outcome and tally of this turn."""
        await self._done.wait()
        if self._outcome is None:
            self._outcome = self._judge()
            logger.log(
                logging.INFO if self._outcome.ok else logging.WARNING,
                "claude turn ended: %s%s",
                self._outcome.kind.value,
                f" ({self._outcome.note})" if self._outcome.note else "",
                extra={"action": "claude.end", "agent": self.owner.agent},
            )
        return self._outcome, self.tally

    def _judge(self) -> TurnOutcome:
        result = self.tally.result
        if result is not None or self._interrupted:
            return classify(
                result,
                self.owner.stderr_tail,
                exit_code=self.owner.returncode,
                interrupted=self._interrupted,
            )
        code = self.owner.returncode
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit {code}"
        outcome = classify(None, self.owner.stderr_tail, exit_code=code)
        if outcome.kind is OutcomeKind.FAILED:
            return outcome
        note = f"claude exited mid-turn without a result ({how}); the next attempt starts afresh"
        return TurnOutcome(OutcomeKind.FAILED, note)

    async def interrupt(self) -> None:
        """Interrupt this turn through the control protocol and wait for its end; a CLI that
        does not end it within `interrupt_grace` is stopped (SIGTERM, then SIGKILL)."""
        if self.ended:
            return
        self._interrupted = True
        owner = self.owner
        owner._log(logging.INFO, "interrupting the turn", action="claude.interrupt")
        try:
            await owner.control({"subtype": "interrupt"}, timeout=owner.interrupt_grace)
            async with asyncio.timeout(owner.interrupt_grace):
                await self._done.wait()
            return
        except (TimeoutError, Unavailable) as exc:
            owner._log(
                logging.WARNING,
                "the interrupt did not end the turn (%s); stopping claude",
                exc or "timed out",
                action="claude.escalate",
            )
        await owner.stop()


class WarmClaude:
    """One long-lived `claude` process with stream-json input. `async with WarmClaude(argv,
    env=..., cwd=..., gate=...) as proc:` then `turn = await proc.turn(prompt)`."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: StrPath | None = None,
        gate: PermissionGate | None = None,
        interrupt_grace: float = 10.0,
        exit_grace: float = 10.0,
        kill_grace: float = 5.0,
        stderr_tail_chars: int = 8192,
        agent: str | None = None,
        on_stray: Callable[[StreamLine], None] | None = None,
    ) -> None:
        if not argv:
            raise ValueError("argv is empty")
        self.argv = list(argv)
        self.env = dict(env) if env is not None else None
        self.cwd = os.fspath(cwd) if cwd is not None else None
        self.gate: PermissionGate = gate if gate is not None else AllowAll()
        self.interrupt_grace = interrupt_grace
        self.exit_grace = exit_grace
        self.kill_grace = kill_grace
        self.agent = agent
        self.on_stray = on_stray
        self.turns = 0  # turns started on this process
        self.exited = asyncio.Event()
        self._stderr: deque[str] = deque()
        self._stderr_chars = 0
        self._stderr_max = stderr_tail_chars
        self._proc: asyncio.subprocess.Process | None = None
        self._turn: WarmTurn | None = None
        self._pending: dict[str, asyncio.Future[ControlResponse]] = {}
        self._readers: list[asyncio.Task[None]] = []
        self._answers: set[asyncio.Task[None]] = set()
        self._write_lock = asyncio.Lock()
        self._closing = False

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
        """Start the CLI and send `initialize`; raises `Unavailable` when it cannot run."""
        if self._proc is not None:
            raise RuntimeError("a WarmClaude starts once")
        try:
            self._proc = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )
        except OSError as exc:
            raise Unavailable(f"cannot start {self.argv[0]}: {exc.strerror or exc}") from exc
        pid = self._proc.pid
        self._log(logging.INFO, "warm claude started (pid %d)", pid, action="claude.start")
        stdout = asyncio.create_task(self._read_stdout(), name=f"claude-warm-stdout:{pid}")
        self._readers = [
            stdout,
            asyncio.create_task(self._read_stderr(), name=f"claude-warm-stderr:{pid}"),
            asyncio.create_task(self._reap(stdout), name=f"claude-warm-reap:{pid}"),
        ]
        # not awaited: the CLI reads stdin in order, so the first user message may follow
        await self._write(
            {
                "type": "control_request",
                "request_id": f"init_{next(_ids)}",
                "request": {"subtype": "initialize", "hooks": None},
            }
        )

    async def close(self) -> None:
        """End the CLI: close stdin, then SIGTERM, then SIGKILL; reap it, drain the pipes."""
        proc = self._proc
        if proc is None or (self._closing and self.exited.is_set()):
            return
        self._closing = True
        try:
            if proc.returncode is None and proc.stdin is not None:
                with contextlib.suppress(OSError, RuntimeError):
                    proc.stdin.close()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.exit_grace):
                        await proc.wait()
            await self.stop()
        except BaseException:
            self._kill_all()
            for task in [*self._readers, *self._answers]:
                task.cancel()
            raise

    async def stop(self) -> None:
        """Stop the CLI now (SIGTERM, `kill_grace`, SIGKILL with descendants) and settle."""
        self._closing = True
        proc = self._proc
        if proc is None:
            return
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(self.kill_grace):
                    await proc.wait()
            except TimeoutError:
                self._log(logging.WARNING, "claude ignored SIGTERM", action="claude.escalate")
                self._kill_all()
        await proc.wait()
        _killpg(proc.pid)
        if self._readers:
            _done, pending = await asyncio.wait(self._readers, timeout=_READER_JOIN)
            for task in pending:
                task.cancel()
        for task in list(self._answers):
            task.cancel()
        await asyncio.gather(*self._readers, *self._answers, return_exceptions=True)
        self._ended()

    def kill(self) -> None:
        """SIGKILL the CLI and every descendant at once (synchronous: usable on the way out
        of a cancelled task)."""
        self._closing = True
        self._kill_all()

    # -- state ------------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode if self._proc is not None else None

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.returncode is None and not self._closing

    @property
    def closing(self) -> bool:
        """True once we asked it to end (close, stop, kill): an exit then is no crash."""
        return self._closing

    @property
    def stderr_tail(self) -> str:
        return "".join(self._stderr)

    # -- turns and control ------------------------------------------------------------------

    async def turn(self, prompt: str) -> WarmTurn:
        """Start a turn: write `prompt` as one user message. Its end comes as its result; a
        process that died already gives a turn that is over at once (failed)."""
        if self._turn is not None and not self._turn.ended:
            raise RuntimeError("a turn is already running on this claude")
        turn = WarmTurn(self)
        self._turn = turn
        self.turns += 1
        message = {"role": "user", "content": prompt}
        sent = await self._write(
            {"type": "user", "message": message, "parent_tool_use_id": None, "session_id": ""}
        )
        if not sent or self.exited.is_set():
            turn._finish()
        return turn

    async def control(self, request: dict[str, Any], *, timeout: float) -> ControlResponse:
        """Send a control request and wait for its response; `Unavailable` when the process
        is gone or the CLI answers with an error, `TimeoutError` when it does not answer."""
        request_id = f"req_{next(_ids)}"
        future: asyncio.Future[ControlResponse] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            sent = await self._write(
                {"type": "control_request", "request_id": request_id, "request": request}
            )
            if not sent:
                raise Unavailable("claude is not running")
            async with asyncio.timeout(timeout):
                answer = await future
        finally:
            self._pending.pop(request_id, None)
        if answer.subtype != "success":
            raise Unavailable(f"claude refused {request.get('subtype')}: {answer.error}")
        return answer

    async def _write(self, message: dict[str, Any]) -> bool:
        proc = self._proc
        if proc is None or proc.stdin is None or proc.returncode is not None:
            return False
        data = json.dumps(message, separators=(",", ":")).encode() + b"\n"
        async with self._write_lock:
            try:
                proc.stdin.write(data)
                await proc.stdin.drain()
            except (OSError, RuntimeError) as exc:  # a closed pipe: the CLI is gone
                self._log(logging.INFO, "claude's stdin is closed: %r", exc, action="claude.pipe")
                return False
        return True

    # -- reading ----------------------------------------------------------------------------

    async def _read_stdout(self) -> None:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        try:
            async for line in read_stream_lines(proc.stdout, _CHUNK):
                self._dispatch(line)
        finally:
            self._ended()  # a no-op until the process has exited: `_reap` says it then

    async def _reap(self, stdout: asyncio.Task[None]) -> None:
        """The process's exit ends its turn even when something it started still holds the
        stdout pipe (the reader gets `_READER_JOIN` seconds to drain what it printed)."""
        proc = self._proc
        assert proc is not None
        await proc.wait()
        _done, pending = await asyncio.wait([stdout], timeout=_READER_JOIN)
        if pending:
            self._log(
                logging.WARNING,
                "claude exited but its stdout is still held open; not reading it further",
                action="claude.pipe_held",
            )
            stdout.cancel()
        self._ended()

    def _dispatch(self, line: StreamLine) -> None:
        for event in line.events:
            if isinstance(event, ControlResponse):
                future = self._pending.get(event.request_id)
                if future is not None and not future.done():
                    future.set_result(event)
            elif isinstance(event, ControlRequest) and event.subtype:
                task = asyncio.create_task(
                    self._answer(event), name=f"claude-warm-control:{event.request_id}"
                )
                self._answers.add(task)
                task.add_done_callback(self._answers.discard)
        turn = self._turn
        if turn is not None and not turn.ended:
            turn._accept(line)
        elif self.on_stray is not None:
            self.on_stray(line)

    async def _answer(self, req: ControlRequest) -> None:
        """Answer one control request of the CLI (exactly once)."""
        body = req.request
        if req.subtype == "can_use_tool":
            tool_input = body.get("input")
            ask = PermissionAsk(
                tool_name=str(body.get("tool_name", "")),
                tool_input=dict(tool_input) if isinstance(tool_input, dict) else {},
                tool_use_id=body.get("tool_use_id"),
                reason=body.get("decision_reason"),
            )
            try:
                decision = await self.gate.decide(ask)
            except Exception as exc:
                logger.exception(
                    "permission gate failed",
                    extra={"action": "claude.permission_error", "agent": self.agent},
                )
                decision_body: dict[str, Any] = {
                    "behavior": "deny",
                    "message": f"the permission check failed: {exc}",
                }
            else:
                if isinstance(decision, Allow):
                    new_input = decision.updated_input
                    decision_body = {
                        "behavior": "allow",
                        "updatedInput": new_input if new_input is not None else ask.tool_input,
                    }
                else:
                    decision_body = {"behavior": "deny", "message": decision.message}
                    if decision.interrupt:
                        decision_body["interrupt"] = True
            self._log(
                logging.INFO,
                "tool %s: %s",
                ask.tool_name,
                decision_body["behavior"],
                action="claude.permission",
            )
            response: dict[str, Any] = {
                "subtype": "success",
                "request_id": req.request_id,
                "response": decision_body,
            }
        else:
            response = {
                "subtype": "error",
                "request_id": req.request_id,
                "error": f"unsupported control request {req.subtype!r}",
            }
        await self._write({"type": "control_response", "response": response})

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
            if self._stderr_chars > self._stderr_max:
                only = self._stderr.pop()[-self._stderr_max :]
                self._stderr.append(only)
                self._stderr_chars = len(only)

    def _ended(self) -> None:
        """The process is gone: end the running turn, fail the pending control requests."""
        if self._proc is None or self._proc.returncode is None:
            return
        if self._turn is not None:
            self._turn._finish()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(Unavailable("claude exited"))
        if not self.exited.is_set():
            self.exited.set()
            self._log(
                logging.INFO if self._closing else logging.WARNING,
                "warm claude exited (code %s)%s",
                self._proc.returncode,
                "" if self._closing else " on its own",
                action="claude.exit",
            )

    def _kill_all(self) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.returncode is None:
            victims = _descendants(proc.pid)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            for pid in victims:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
        _killpg(proc.pid)

    def _log(self, level: int, msg: str, *args: object, action: str) -> None:
        logger.log(level, msg, *args, extra={"action": action, "agent": self.agent})
