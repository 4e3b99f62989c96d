"""The harness main loop: park in `recv`, build a wake prompt, run one Claude Code turn,
record it, repeat.

Invariants:
- One turn at a time; the state (`waiting` parked in recv, `thinking` in a turn,
  `compacting`, `idle` between, `offline` before connecting) is authoritative for pages, and
  reported to the core best-effort (`harness/reporter.py`: `report_state`, with the failed
  turn's note and the tool running now), never blocking a turn.
- A turn's every stream-json line is published on the event bus, parsed.
- Outcomes: ok; failed (note = error text); prompt_too_long → `/compact`, then the turn is
  retried once; no result line → cancelled; longer than `turn_timeout` → interrupted, cancelled
  with a note saying so. Every attempt ends with exactly one `turn_end` and one stats row.
- Model-side failures (`harness/retry.py`): the CLI retries each request itself
  (`model_retries`); a turn that still fails on a transient error is run again with its wake
  message held, after a cancellable wait, up to `turn_retry.attempts`; the next attempt never
  repeats a prompt the session already holds. `_settle_wake` is the one place that decides a
  wake message's fate: done, or reported to the manager and the operator with its id.
- Notes name the configured model endpoint, never the in-sandbox tunnel's address.
- The conversation continues across turns and restarts (`--continue` once a session exists).
- Graceful stop: a parked recv is abandoned at once (nothing is lost: an unwritten reply
  re-queues its messages); a running turn is allowed to finish.
- The woken message stays leased to the harness's connection while its turn runs (renewed
  every `lease_seconds / 4`) and is acknowledged only once the turn has ended — ok or a
  definitive failure (`_settle`); a stop during a rate-limit wait releases it. A harness that
  dies mid-turn therefore loses nothing: the core re-offers the message to its next run.
  Ids it has already handled (a redelivery after a reconnect dropped the lease) are
  acknowledged without another turn.
- The agent's config is the core's `config` answer, validated there (`AgentConfig`); the
  harness reads it through `AgentView` and never imports pydantic.

Around it: `options.py` (what it runs with), `clisetup.py` (the CLI's files, argv and
environment), `streamevents.event_kind` (the bus's names for events), `stats.turn_row` (a
turn's stats row), `retry.py` (the retry policy), `claude.py` (one CLI process).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

from hyperhive.client.agent import AgentClient
from hyperhive.harness.agentview import AgentView
from hyperhive.harness.claude import run_compact
from hyperhive.harness.clisetup import CliSetup, Identity
from hyperhive.harness.driver import Launch, TurnHandle
from hyperhive.harness.events import EventBus
from hyperhive.harness.livetext import LiveText
from hyperhive.harness.opgate import OperatorGate, gate_for
from hyperhive.harness.options import HarnessOptions
from hyperhive.harness.prompt import wake_prompt
from hyperhive.harness.reporter import StateReporter, StateTracker
from hyperhive.harness.retry import prompt_recorded, public_note, retry_hint, retry_prompt
from hyperhive.harness.stats import TurnStats, TurnTimes, turn_row
from hyperhive.harness.stream import OutcomeKind, TurnOutcome, TurnTally
from hyperhive.harness.streamevents import (
    ApiRetry,
    Event,
    Partial,
    StreamLine,
    event_kind,
    event_payload,
)
from hyperhive.harness.turntrace import TurnTracer
from hyperhive.harness.usage import report_turn
from hyperhive.harness.warmhooks import harness_driver

logger = logging.getLogger(__name__)

RECV_PARK = 180.0
HANDLED_MEMORY = 256  # ids of recently handled messages, to drop redeliveries
QUIET_SUBTYPES = frozenset({"thinking_tokens"})


def _trace(tracer: TurnTracer, ev: Any) -> None:
    tracer.on_event(ev.kind, ev.payload)


class Harness:
    def __init__(self, opts: HarnessOptions) -> None:
        self.opts = opts
        self.state = "offline"
        self.name = "?"
        self.kind = "agent"
        self.manager = "manager"
        self.model = "haiku"
        self.config = AgentView()
        self.bus = EventBus(opts.state_dir)
        self.live = LiveText()  # assistant text / thinking as it streams (`partial` events)
        self.stats = TurnStats(opts.state_dir)
        self.client = AgentClient(opts.socket)
        # what it is doing, told to the core best-effort on its own connection
        self.reporter = StateReporter(str(opts.socket))
        self.tracker = StateTracker(self.reporter)
        self.bus.add_listener(lambda ev: self.tracker.on_event(ev.kind, ev.ts, ev.payload))
        self.unread = 0
        self._turn: TurnHandle | None = None
        # its gate refuses unlisted tools until `_introduce` knows the config (`gate_for`)
        self.driver = harness_driver(
            self.bus,
            opts.warm_seconds,
            self._launch,
            self._publish,  # streaming deltas as live `partial`s (livetext.py)
        )
        self._cancel_requested = False
        self._timed_out = False  # the running/last attempt was stopped by `turn_timeout`
        self._retry_hint = 0.0  # the CLI's last retry delay in this attempt (retry-after)
        self._retry_cancel: asyncio.Event | None = None  # set while waiting to retry a turn
        self._compact_requested = False
        self._stopping = asyncio.Event()
        self._idle = asyncio.Event()
        self.cli = CliSetup(opts)
        self.run_dir = self.cli.run_dir
        self.config_dir = self.cli.config_dir
        self.tracer = TurnTracer.create(self.run_dir, self)  # None unless tracing is on
        if self.tracer is not None:
            self.bus.add_listener(partial(_trace, self.tracer))
            self.cli.trace_file = self.tracer.file
        self.last_turn: dict[str, Any] | None = None
        self._handled: deque[int] = deque(maxlen=HANDLED_MEMORY)
        self._recv_task: asyncio.Future[dict[str, Any]] | None = None  # the parked recv

    # -- control (used by the web page / signals) --------------------------------------------

    def set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.bus.publish("state", state=state)

    def _operator_wait(self, waiting: bool) -> None:
        """The turn waits for the operator's OK to use a tool (the agent page's state)."""
        if waiting and self.state == "thinking":
            self.set_state("waiting_operator")
        elif not waiting and self.state == "waiting_operator":
            self.set_state("thinking")

    async def cancel(self) -> bool:
        """Interrupt the running turn (the control protocol's `interrupt`), or end the wait before a failed
        turn's next attempt. False when neither is under way."""
        waiting = self._retry_cancel
        if waiting is not None:
            waiting.set()
            self.bus.publish("note", text="cancel requested by the operator: no further attempt")
            return True
        turn = self._turn
        if turn is None:
            return False
        self._cancel_requested = True
        self.bus.publish("note", text="cancel requested by the operator")
        await turn.interrupt()
        return True

    def request_compact(self) -> None:
        """Compact the conversation now if idle, else right after the running turn."""
        self._compact_requested = True
        self._wake_recv()

    def stop(self) -> None:
        """Graceful stop: finish the running turn, then exit."""
        self._stopping.set()
        self._wake_recv()

    def _wake_recv(self) -> None:
        task = self._recv_task
        if task is not None and not task.done():
            task.cancel()

    # -- setup ------------------------------------------------------------------------------

    async def _introduce(self) -> None:
        who = await self.client.request({"cmd": "whoami"})
        cfg = await self.client.request({"cmd": "config"})
        self.name, self.kind, self.manager = who["name"], who["kind"], who["manager"]
        self.unread = who.get("unread", 0)
        self.model = cfg["model"]
        self.config = AgentView.from_json(cfg["config"])  # validated by the core
        identity = Identity(
            self.name, self.kind, self.manager, self.model, self.config, cfg.get("role_prompt")
        )
        for w in self.cli.write(identity):
            logger.warning("%s", w, extra={"action": "mcp_config", "agent": self.name})
            self.bus.publish("note", text=f"config: {w}")
        # what the CLI's `can_use_tool` requests go to: the operator, for `ask_operator_for`
        self.driver.gate = gate_for(
            self.opts.socket,
            self.config.ask_operator_for,
            cwd=str(self.opts.state_dir),
            home=str(self.opts.state_dir),
            notify=lambda text: self.bus.publish("note", text=text),
            on_wait=self._operator_wait,
        )

    def _has_session(self) -> bool:
        return self.cli.has_session()

    def _argv(self, prompt: str | None) -> list[str]:
        return self.cli.argv(prompt, self.model)

    def _launch(self) -> Launch:
        return Launch(self._argv(None), self._env(), self.opts.state_dir)  # turns on stdin

    def _env(self) -> dict[str, str]:
        return self.cli.env(self.name, self.config)

    # -- main loop --------------------------------------------------------------------------

    async def run(self) -> None:
        async with self.bus, self.stats, self.reporter, self.driver:
            await self._introduce()
            self.driver.agent = self.name
            self.bus.publish("harness_start", name=self.name, kind=self.kind, model=self.model)
            logger.info(
                "harness up for %s",
                self.name,
                extra={"action": "harness_start", "agent": self.name},
            )
            try:
                while not self._stopping.is_set():
                    if self._compact_requested:
                        await self._compact("requested by the operator")
                        continue
                    answer = await self._park()
                    if answer is None:
                        continue
                    await self._wake(answer)
            finally:
                self.set_state("offline")
                await self.client.aclose()
                if isinstance(self.driver.gate, OperatorGate):
                    await self.driver.gate.aclose()

    async def _park(self) -> dict[str, Any] | None:
        self.set_state("waiting")
        self._recv_task = recv = asyncio.ensure_future(
            self.client.request({"cmd": "recv", "wait_seconds": RECV_PARK, "max": 1})
        )
        try:
            return await recv
        except asyncio.CancelledError:
            if self._stopping.is_set() or self._compact_requested:
                await self.client.aclose()  # the core re-queues anything leased to that recv
                return None
            raise
        finally:
            self._recv_task = None

    async def _wake(self, answer: dict[str, Any]) -> None:
        """Take the turn for the message `answer` (a recv answer) carries, then settle it."""
        msgs = answer["messages"]
        if not msgs:
            return
        self.unread = answer.get("remaining", 0)
        msg = msgs[0]
        if msg["id"] in self._handled:  # offered again after a reconnect dropped our lease
            self.bus.publish("note", text=f"message #{msg['id']} again: already handled")
            await self._settle(msg["id"], handled=True)
            return
        async with self._lease_kept(float(answer.get("lease_seconds") or 0)):
            handled = await self.take_turn(msg, answer.get("remaining", 0))
        await self._settle(msg["id"], handled)

    @contextlib.asynccontextmanager
    async def _lease_kept(self, lease_seconds: float) -> AsyncIterator[None]:
        """Renew the connection's lease while the body (a turn) runs. The renewal is never
        cancelled mid-request (that would leave its answer unread on the shared connection):
        it is told to stop and awaited."""
        if lease_seconds <= 0:
            yield
            return
        done = asyncio.Event()

        async def renew() -> None:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(done.wait(), lease_seconds / 4)
                if done.is_set():
                    return
                try:
                    await self.client.renew()
                except Exception as exc:  # the core is away: the lease is gone anyway
                    logger.info(
                        "lease renewal failed: %r",
                        exc,
                        extra={"action": "lease_renew_failed", "agent": self.name},
                    )

        task = asyncio.create_task(renew(), name=f"harness-lease-renew-{self.name}")
        try:
            yield
        finally:
            done.set()
            await task

    async def _settle(self, msg_id: int, handled: bool) -> None:
        """Acknowledge the woken message once its turn ended (or release it, unhandled).
        A failure here costs a duplicate, never a loss: the core re-offers it."""
        if handled:
            self._handled.append(msg_id)
        try:
            if handled:
                await self.client.ack([msg_id])
            else:
                await self.client.release([msg_id])
        except Exception as exc:
            logger.warning(
                "could not %s message #%d: %r; it will be offered again",
                "acknowledge" if handled else "release",
                msg_id,
                exc,
                extra={"action": "ack_failed", "agent": self.name},
            )

    async def take_turn(self, msg: dict[str, Any], remaining: int) -> bool:
        """Run turns on `msg` until one succeeds, the operator cancels, the harness stops or
        the attempts are spent. True: the message is done (it succeeded, the operator dropped
        it, or it was given up on and reported by `_settle_wake`) and is acknowledged; False:
        the harness stopped first, so it is released and offered again on the next run."""
        prompt = wake_prompt(msg, remaining)
        retry = self.opts.turn_retry
        attempt, compacted = 0, False
        while True:
            attempt += 1
            outcome = await self._one_turn(prompt, msg["from"], msg, remaining)
            if outcome.kind is OutcomeKind.PROMPT_TOO_LONG and not compacted:
                compacted = True
                attempt -= 1  # compacting and trying again is not a retry of a failure
                await self._compact("prompt too long")
                continue
            dropped = outcome.kind is OutcomeKind.CANCELLED and not self._timed_out
            if outcome.ok or dropped:
                break
            if self._stopping.is_set():
                return False
            wait = retry.delay(attempt, outcome, timed_out=self._timed_out, hint=self._retry_hint)
            if wait is None:
                break
            self.bus.publish(
                "note",
                text=f"turn {outcome.kind} ({outcome.note}); attempt {attempt + 1} of "
                f"{retry.attempts} in {wait:g} s",
            )
            if not await self._wait_to_retry(wait):
                if self._stopping.is_set():
                    return False
                dropped = True
                outcome = TurnOutcome(
                    OutcomeKind.CANCELLED, "cancelled by the operator before the next attempt"
                )
                break
            if prompt_recorded(self.cli.session_dir(), prompt):
                prompt = retry_prompt(outcome.note, attempt + 1, retry.attempts)
        await self._settle_wake(msg, outcome, attempt, dropped=dropped)
        return True

    async def _wait_to_retry(self, seconds: float) -> bool:
        """Wait `seconds` before the next attempt; False when a stop or the operator's cancel
        ended the wait (the state stays `idle`: nothing runs meanwhile)."""
        cancel = self._retry_cancel = asyncio.Event()
        stop = asyncio.ensure_future(self._stopping.wait())
        cancelled = asyncio.ensure_future(cancel.wait())
        try:
            done, _ = await asyncio.wait(
                {stop, cancelled}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED
            )
            return not done
        finally:
            self._retry_cancel = None
            for task in (stop, cancelled):
                task.cancel()
            await asyncio.gather(stop, cancelled, return_exceptions=True)

    async def _settle_wake(
        self, msg: dict[str, Any], outcome: TurnOutcome, attempts: int, *, dropped: bool
    ) -> None:
        """The one place a wake message's fate is decided, once its turns are over.

        - ok, or `dropped` (the operator cancelled it): the message is done;
        - anything else (failed for good, attempts spent): the message was not handled; the
          manager and the operator are told, with its id and text, so it is not lost silently.
        Either way the caller then acknowledges it (`_settle`); a harness that stops mid-retry
        never gets here: it releases the message, which is offered again on its next run."""
        if outcome.ok or dropped:
            return
        why = "giving up"
        logger.warning(
            "turn on message %s failed after %d attempt(s), %s: %s",
            msg.get("id"),
            attempts,
            why,
            outcome.note,
            extra={"action": "turn_gave_up", "agent": self.name},
        )
        self.bus.publish(
            "note",
            text=f"message #{msg.get('id')} not handled after {attempts} attempt(s) ({why}); "
            "reported to the manager and the operator",
        )
        await self._report_failure(msg, outcome, attempts)

    async def _report_failure(
        self, msg: dict[str, Any], outcome: TurnOutcome, attempts: int
    ) -> None:
        body = str(msg.get("body", ""))
        clipped = body if len(body) <= 400 else body[:399] + "…"
        report = (
            f"[hive] {self.name} could not handle message #{msg.get('id')} from "
            f"{msg.get('from')}: {attempts} attempt(s), last one {outcome.kind}: {outcome.note}. "
            f"The message was not acted on; resend it once the cause is fixed. It read: {clipped}"
        )
        for to in dict.fromkeys((self.manager, "operator")):
            if to == self.name:
                continue
            try:
                await asyncio.wait_for(self.client.call("send", to=to, body=report), 30)
            except Exception as exc:
                logger.warning(
                    "could not report the failed turn to %s: %s",
                    to,
                    exc,
                    extra={"action": "turn_report_failed", "agent": self.name},
                )

    async def _run_cli(self, prompt: str) -> tuple[TurnOutcome, TurnTally, float]:
        self._cancel_requested = False
        self._timed_out = False
        self._retry_hint = 0.0
        t0 = time.monotonic()
        async with self.driver.turn(prompt) as turn:
            self._turn = turn
            timer = None
            if self.opts.turn_timeout > 0:
                timer = asyncio.create_task(
                    self._time_out(turn, self.opts.turn_timeout), name="harness-turn-timeout"
                )
            try:
                async for raw, events in turn.lines():
                    if raw.get("subtype") in QUIET_SUBTYPES:
                        continue  # progress counters: not worth a row in the ring or store
                    for ev in events:
                        if isinstance(ev, ApiRetry) and (hint := retry_hint(ev)) is not None:
                            self._retry_hint = hint
                        self._publish(ev)
                outcome, tally = await turn.wait()
            finally:
                self._turn = None
                if timer is not None:
                    timer.cancel()
                    await asyncio.gather(timer, return_exceptions=True)
                if isinstance(self.driver.gate, OperatorGate):
                    self.driver.gate.turn_ended()  # an ask still open is nobody's now
        if self._timed_out:
            outcome = TurnOutcome(
                OutcomeKind.CANCELLED,
                f"turn timed out after {self.opts.turn_timeout:g} s (turn_timeout_seconds); "
                f"the model endpoint {self.opts.endpoint or 'Anthropic API'} may not be answering"
                + (f"; {outcome.note}" if outcome.note else ""),
            )
        return outcome, tally, (time.monotonic() - t0) * 1000

    def _publish(self, ev: Event) -> None:
        """One parsed stream event on the bus; streaming deltas as coalesced live `partial`s."""
        if isinstance(ev, Partial):
            for payload in self.live.feed(ev, time.monotonic()):
                self.bus.publish_live("partial", **payload)
            return
        self.bus.publish(event_kind(ev), **event_payload(ev))

    async def _time_out(self, turn: TurnHandle, seconds: float) -> None:
        await asyncio.sleep(seconds)  # a timer: the turn is cut at its deadline
        self._timed_out = True
        self.bus.publish("note", text=f"turn timed out after {seconds:g} s; interrupting it")
        await turn.interrupt()

    async def _one_turn(
        self, prompt: str, wake_from: str, msg: dict[str, Any], remaining: int
    ) -> TurnOutcome:
        self.set_state("thinking")
        started = time.time()
        t0 = time.monotonic()
        self.bus.publish(
            "turn_start",
            **{
                "from": wake_from,
                "body": msg["body"],
                "unread": remaining,
                "kind": msg.get("kind", "message"),
                "id": msg["id"],
                **({"trace_parent": msg["trace_parent"]} if msg.get("trace_parent") else {}),
            },
        )
        try:
            outcome, tally, cli_ms = await self._run_cli(prompt)
            outcome = TurnOutcome(
                outcome.kind, public_note(outcome.note, self.opts.base_url, self.opts.endpoint)
            )
        except Exception as exc:  # the CLI could not even start
            logger.exception(
                "turn failed to run", extra={"action": "turn_error", "agent": self.name}
            )
            outcome, tally, cli_ms = (
                TurnOutcome(OutcomeKind.FAILED, f"harness error: {exc}"),
                TurnTally(),
                0.0,
            )
        ended = time.time()
        self.bus.publish("turn_end", ok=outcome.ok, kind=str(outcome.kind), note=outcome.note)
        self.set_state("idle")
        duration_ms = (time.monotonic() - t0) * 1000
        times = TurnTimes(started, ended, duration_ms, cli_ms)
        await self._record(outcome, tally, wake_from, times, t0)
        return outcome

    async def _compact(self, why: str) -> None:
        self._compact_requested = False
        if not self._has_session():
            self.bus.publish("note", text="nothing to compact yet")
            return
        self.set_state("compacting")
        self.bus.publish("compact_start", reason=why)
        await self.driver.close()  # `/compact` runs as its own `-p --continue` process

        def on_line(line: StreamLine) -> None:
            for ev in line.events:
                self._publish(ev)

        try:
            outcome, _tally = await run_compact(
                self.cli.binary(),
                env=self._env(),
                cwd=self.opts.state_dir,
                model=self.model,
                settings_path=self.cli.settings_path,
                mcp_path=self.cli.mcp_path,
                system_prompt_path=self.cli.system_prompt_path,
                on_line=on_line,
                agent=self.name,
            )
        except Exception as exc:
            logger.exception(
                "compaction failed to run", extra={"action": "compact_error", "agent": self.name}
            )
            outcome = TurnOutcome(OutcomeKind.FAILED, str(exc))
        self.bus.publish("compact_end", ok=outcome.ok, note=outcome.note)
        self.set_state("idle")

    async def _count(self, cmd: str, key: str) -> int:
        try:
            answer = await asyncio.wait_for(self.client.request_answer({"cmd": cmd}), 5)
        except Exception as exc:  # a count for the wake prompt: 0 is an honest fallback
            logger.info(
                "%s failed: %r", cmd, exc, extra={"action": "count_failed", "agent": self.name}
            )
            return 0
        if not answer.body.get("ok"):
            return 0
        value = answer.body.get(key, 0)
        return len(value) if isinstance(value, list) else int(value or 0)

    async def _record(
        self, outcome: TurnOutcome, tally: TurnTally, wake_from: str, times: TurnTimes, t0: float
    ) -> None:
        row = turn_row(
            self.model,
            wake_from,
            outcome,
            tally,
            times,
            open_threads=await self._count("get_open_threads", "threads"),
            open_reminders=await self._count("count_pending_reminders", "count"),
        )
        row.harness_ms = round((time.monotonic() - t0) * 1000 - times.cli_ms)
        self.last_turn = dataclasses.asdict(row)
        await self.stats.record(row)
        await report_turn(self.client, row, self.name)
