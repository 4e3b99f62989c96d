"""Budgets with a circuit breaker (`hive.feature("budgets")`).

Usage comes from the harness: after every turn it reports the turn's tokens and cost
(`report_turn`, the same figures as its turn-stats row); the core stores one usage row per
turn (`BudgetStore`) and checks the agent's limits (agent.toml `[budget]`, else hive.toml
`[budgets.defaults]`) over a rolling hour and day, plus the hive-wide daily cost.

- At `warn_fraction` (80 %) of any limit: one `budget_warning` system event to the agent and a
  `budget_warning` hub event (the dashboard's notice). Said once per limit until the use
  drops below the mark again (in memory: a restarted core may say it once more).
- At 100 %, or when the runaway guard (`core/runaway.py`) fires on a `message_sent`, the
  breaker trips: the trip row is stored, the agent is paused (its mail queues, as `pause`
  does: nothing is lost), its manager gets a `budget_tripped` system event, the operator a
  `budget_tripped` event in the operator inbox and an operator question (asked on the
  manager's behalf) with the options "raise <limit> by X", "resume once", "keep paused".
- The answer is acted on: a raise is stored for one window of that limit and the agent
  resumed; "resume once" resumes it with the limits as they are (the next turn over the limit
  trips again); anything else (or expiry) keeps it paused. Unpausing the agent by hand
  (`hive unpause`) also ends the trip.

Across nodes (docs/multihost.md): the node that runs an agent owns its breaker (trips it, acts
on the answer, ends it); the other nodes keep a view of it (`_remote`, read from the store at
start, whenever a relayed `budget_tripped` / `budget_question` / `budget_reset` arrives, and
when a pushed status row disagrees with it: a missed event heals), so every node shows it
tripped and counts it. An answer given on another node arrives as a relayed
`question_resolved` and is acted on by the owner.

Invariants: a breaker trips once at a time per agent (the store decides); a trip that was
stored but whose pause did not happen (a crash between) is paused on the next start; an
answer given while the core was down (resolved question, trip still open) is acted on at
start; every trip/act effect runs to completion (`Inflight`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Protocol

from hyperhive.budgetconfig import LIMIT_KEYS, effective_limits
from hyperhive.clock import iso
from hyperhive.core.deadlines import Inflight
from hyperhive.core.events import HiveEvent
from hyperhive.core.feature import BaseFeature
from hyperhive.core.rpc import Caller
from hyperhive.core.runaway import RunawayGuard
from hyperhive.core.store.budgets_base import BudgetStore, Trip
from hyperhive.errors import HiveError, NotFound, Unavailable
from hyperhive.names import OPERATOR, SYSTEM
from hyperhive.wire.attention import AttentionItem
from hyperhive.wire.base import Ok
from hyperhive.wire.budgets import (
    AgentBudgetRow,
    BreakerView,
    BudgetsOk,
    BudgetsReq,
    LimitUse,
    ReportTurn,
)

if TYPE_CHECKING:
    from hyperhive.core.hive import Hive

logger = logging.getLogger(__name__)

HIVE_KEY = "hive_cost_usd_per_day"
RESUME_ONCE = "resume once"
KEEP_PAUSED = "keep paused"
KEEP_USAGE_SECONDS = 2 * 86400.0
REPORTS_PER_MINUTE = 120
RAISE_WINDOW = {HIVE_KEY: 86400.0}  # how long a raise of a non-window limit lasts (else 1 h)


class Asker(Protocol):
    """What the breaker needs of the questions feature."""

    async def ask(
        self,
        asker: str,
        question: str,
        options: Any = (),
        multi: bool = False,
        ttl_seconds: float | None = None,
    ) -> Any: ...

    async def get(self, qid: int) -> Any: ...


def _fmt(key: str, amount: float) -> str:
    if "cost" in key:
        return f"${amount:.2f}"
    return f"{amount:g}"


class BudgetsFeature(BaseFeature):
    name = "budgets"

    def __init__(self, questions: Asker | None, store: BudgetStore | None = None) -> None:
        self._questions = questions
        self.after: tuple[str, ...] = ("questions",) if questions is not None else ()
        self._store = store
        self._inflight = Inflight()
        self._pending: set[asyncio.Task[Any]] = set()
        self._trips: dict[str, Trip] = {}  # trips of the agents this node runs
        self._remote: dict[str, Trip] = {}  # trips of the agents other nodes run (a view)
        self._paused_seen: set[str] = set()  # tripped agents whose pause we have seen
        self._warned: set[tuple[str, str]] = set()
        self._worst: dict[str, float] = {}  # the meter, per agent (updated on every report)
        self._reports: dict[str, deque[float]] = {}  # report times (monotonic), last minute
        self.guard = RunawayGuard()
        self._last_batch: dict[str, tuple[str, object]] = {}  # sender -> its last (sender, sent_at)
        self._runaway_raised: dict[tuple[str, str], float] = {}  # (agent, key) -> extra allowed
        # tokens and cost since midnight UTC, per agent: (day, tokens, cost); `record` adds
        self._today: dict[str, tuple[str, int, float]] = {}

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self, hive: Hive) -> None:
        await super().start(hive)
        self.store: BudgetStore = self._store or hive.storage.budgets
        for t in await self.store.trips():
            (self._trips if self._owns(t.agent) else self._remote)[t.agent] = t
        hive.hub.add_listener(self._on_event, relayed=True)
        hive.registry.on_change(self._agent_changed)
        _register_verbs(hive, self)

    async def after_start(self) -> None:
        for t in list(self._trips.values()):
            rec = self.hive.registry.get(t.agent)
            if rec is None:
                await self._end_trip(t.agent, "the agent is gone")
            elif not rec.paused:  # stored, but the pause never happened (a crash between)
                await self.hive.registry.update(t.agent, paused=True)
            else:
                self._paused_seen.add(t.agent)
            if t.question_id is not None and self._questions is not None:
                with contextlib.suppress(HiveError):
                    q = await self._questions.get(t.question_id)
                    if q.answer is not None:
                        await self._act(t.agent, t.question_id, q.answer)
        for name in self.hive.registry.names():
            await self._load_runaway_raises(name)
        self.hive.tasks.spawn("budgets-sweep", self._sweep_loop, restart=True)

    async def _load_runaway_raises(self, agent: str) -> None:
        raised = await self.store.raises(agent, iso(self.hive.clock.now()))
        for key in ("runaway_messages_per_minute", "runaway_exchanges_per_minute"):
            if key in raised:
                self._runaway_raised[(agent, key)] = raised[key]
            else:
                self._runaway_raised.pop((agent, key), None)

    async def aclose(self) -> None:
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=10)
        await self._inflight.aclose()

    async def status_fields(self, agent: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if agent in self._worst:
            out["budget_used"] = round(self._worst[agent], 4)
        if agent in self._trips or agent in self._remote:
            out["budget_tripped"] = True
        tokens, cost = await self.today(agent)
        if tokens or cost:
            out["tokens_today"] = tokens
            out["cost_today_usd"] = round(cost, 6)
        return out

    async def today(self, agent: str) -> tuple[int, float]:
        """`agent`'s tokens and cost since midnight UTC (read once a day per agent, then kept
        in step by `record`)."""
        now = self.hive.clock.now()
        day = iso(now)[:10]
        hit = self._today.get(agent)
        if hit is None or hit[0] != day:
            midnight = now - (now % 86400)
            s = await self.store.sums(agent, iso(midnight))
            hit = self._today[agent] = (day, s.tokens, s.cost_usd)
        return hit[1], hit[2]

    async def attention(self) -> list[AttentionItem]:
        return [
            AttentionItem(
                kind="budgets",
                count=len(set(self._trips) | set(self._remote)),
                label="tripped budgets",
                href="#budgets",
            )
        ]

    def tripped(self) -> dict[str, Trip]:
        """Every tripped breaker of the hive (this node's and the view of the others')."""
        return {**self._remote, **self._trips}

    def _owns(self, agent: str) -> bool:
        """Whether this node runs `agent` (always, on a single host)."""
        if not self.hive.runs("nodes"):
            return True
        return bool(getattr(self.hive.feature("nodes"), "owns", lambda _: True)(agent))

    def _view_stale(self, agent: object) -> bool:
        """Whether the status row another node pushed for `agent` disagrees with the view."""
        if not isinstance(agent, str) or not self.hive.runs("nodes"):
            return False
        relay = getattr(self.hive.feature("nodes"), "relay", None)
        row = relay.row(agent) if relay is not None else None
        return row is not None and bool(row.budget_tripped) != (agent in self._remote)

    async def _reload_remote(self) -> None:
        trips = await self.store.trips()
        self._remote = {t.agent: t for t in trips if not self._owns(t.agent)}

    # -- usage --------------------------------------------------------------------------------

    async def record(self, agent: str, rep: ReportTurn) -> None:
        """Store one turn's usage and check the agent's limits. An agent reporting more than
        `REPORTS_PER_MINUTE` turns a minute is refused (`unavailable`): a turn takes seconds,
        and the usage table must not be an agent's way to fill the disk."""
        seen = self._reports.setdefault(agent, deque())
        mono = time.monotonic()
        while seen and seen[0] <= mono - 60:
            seen.popleft()
        if len(seen) >= REPORTS_PER_MINUTE:
            raise Unavailable(f"more than {REPORTS_PER_MINUTE} turn reports in a minute")
        seen.append(mono)
        now = self.hive.clock.now()
        tokens = rep.input_tokens + rep.output_tokens
        await self.today(agent)  # read the day so far before adding this turn
        await self.store.add_usage(agent, iso(now), rep.model, tokens, rep.cost_usd)
        day, t0, c0 = self._today[agent]
        self._today[agent] = (day, t0 + tokens, c0 + rep.cost_usd)
        self.hive.hub.publish(
            "turn_reported",
            agent=agent,
            model=rep.model,
            result_kind=rep.result_kind,
            duration_ms=rep.duration_ms,
            input_tokens=rep.input_tokens,
            output_tokens=rep.output_tokens,
            cost_usd=rep.cost_usd,
            tool_calls=rep.tool_calls,
        )
        await self.check(agent)

    async def limits(self, agent: str) -> dict[str, float]:
        cfg = self.hive.agent_configs.get_or_default(agent)
        out = effective_limits(self.hive.config.budgets, cfg.budget)
        raised = await self.store.raises(agent, iso(self.hive.clock.now()))
        for key, amount in raised.items():
            if out.get(key):
                out[key] += amount
        return out

    async def use(self, agent: str) -> list[LimitUse]:
        now = self.hive.clock.now()
        limits = await self.limits(agent)
        hour = await self.store.sums(agent, iso(now - 3600))
        day = await self.store.sums(agent, iso(now - 86400))
        used = {
            "tokens_per_hour": float(hour.tokens),
            "tokens_per_day": float(day.tokens),
            "cost_usd_per_hour": hour.cost_usd,
            "cost_usd_per_day": day.cost_usd,
            "turns_per_hour": float(hour.turns),
        }
        return [_limit_use(k, used[k], limits[k]) for k in LIMIT_KEYS]

    async def hive_use(self) -> LimitUse:
        day = await self.store.sums(None, iso(self.hive.clock.now() - 86400))
        return _limit_use(HIVE_KEY, day.cost_usd, self.hive.config.budgets.hive_cost_usd_per_day)

    async def rows(self) -> BudgetsOk:
        out = []
        for name in self.hive.registry.names():
            uses = await self.use(name)
            worst = max((u.fraction for u in uses), default=0.0)
            self._worst[name] = worst
            t = self._trips.get(name) or self._remote.get(name)
            view = (
                BreakerView(reason=t.reason, tripped_at=t.tripped_at, question_id=t.question_id)
                if t is not None
                else None
            )
            out.append(AgentBudgetRow(agent=name, limits=uses, worst=worst, tripped=view))
        return BudgetsOk(agents=out, hive=await self.hive_use())

    async def check(self, agent: str) -> None:
        uses = await self.use(agent)
        uses.append(await self.hive_use())
        self._worst[agent] = max((u.fraction for u in uses), default=0.0)
        warn = self.hive.config.budgets.warn_fraction
        for u in uses:
            if u.limit <= 0:
                continue
            if u.fraction >= 1.0:
                what = "the hive's" if u.key == HIVE_KEY else f"{agent}'s"
                reason = (
                    f"{what} {u.key} limit reached: {_fmt(u.key, u.used)} of {_fmt(u.key, u.limit)}"
                )
                await self.trip(agent, u.key, reason, u.limit)
                return
            mark = (agent, u.key)
            if u.fraction >= warn and mark not in self._warned:
                self._warned.add(mark)
                await self._warn(agent, u)
            elif u.fraction < warn:
                self._warned.discard(mark)

    async def _warn(self, agent: str, u: LimitUse) -> None:
        logger.info(
            "%s is at %.0f%% of %s",
            agent,
            u.fraction * 100,
            u.key,
            extra={"action": "budget_warning", "agent": agent},
        )
        self.hive.hub.publish(
            "budget_warning",
            agent=agent,
            key=u.key,
            used=u.used,
            limit=u.limit,
            fraction=u.fraction,
        )
        with contextlib.suppress(HiveError):
            await self.hive.broker.system_event(
                agent,
                "budget_warning",
                limit=u.key,
                used=round(u.used, 6),
                of=u.limit,
                note=f"{u.fraction:.0%} of your {u.key} budget is used; at 100% you are paused",
            )

    # -- the breaker --------------------------------------------------------------------------

    async def trip(self, agent: str, key: str, reason: str, limit: float) -> bool:
        """Trip `agent`'s breaker (False: it already was)."""
        return await self._inflight.run(self._trip(agent, key, reason, limit))

    async def _trip(self, agent: str, key: str, reason: str, limit: float) -> bool:
        if self.hive.registry.get(agent) is None:
            return False
        step = limit * self.hive.config.budgets.raise_fraction
        if key.startswith("runaway_") or key == "turns_per_hour" or "tokens" in key:
            step = float(max(1, math.ceil(step)))
        t = Trip(agent, key, reason, iso(self.hive.clock.now()), step)
        if not await self.store.trip(t):
            return False
        try:  # paused before it shows as tripped (`tripped()` implies paused)
            await self.hive.registry.update(agent, paused=True)
        except NotFound:  # destroyed meanwhile
            await self.store.clear(agent)
            return False
        self._trips[agent] = t
        self._paused_seen.add(agent)
        logger.warning(
            "breaker tripped for %s: %s",
            agent,
            reason,
            extra={"action": "budget_tripped", "agent": agent},
        )
        self.hive.hub.publish("budget_tripped", agent=agent, key=key, reason=reason)
        mgr = self.hive.registry.manager()
        for to in ([mgr.name] if mgr is not None else []) + [OPERATOR]:
            try:
                await self.hive.broker.system_event(
                    to, "budget_tripped", agent=agent, reason=reason
                )
            except HiveError as exc:
                logger.warning("could not tell %s of the trip: %s", to, exc)
        if self._questions is not None and mgr is not None:
            options = [f"raise {key} by {_fmt(key, step)}", RESUME_ONCE, KEEP_PAUSED]
            q = await self._questions.ask(
                mgr.name,
                f"{agent} is paused: {reason}. Its mail queues until it is resumed.",
                options,
            )
            await self.store.set_question(agent, q.id)
            self._trips[agent] = Trip(agent, key, reason, t.tripped_at, step, q.id)
            self.hive.hub.publish("budget_question", agent=agent, question_id=q.id)
        return True

    async def _act(self, agent: str, qid: int, answer: str) -> None:
        t = self._trips.get(agent)
        if t is None or t.question_id != qid:
            return
        now = self.hive.clock.now()
        if answer.startswith("raise "):
            window = (
                LIMIT_KEYS[t.key][0] if t.key in LIMIT_KEYS else RAISE_WINDOW.get(t.key, 3600.0)
            )
            await self.store.add_raise(agent, t.key, t.raise_by, iso(now + window))
            await self._load_runaway_raises(agent)
            await self._resume(agent, f"{t.key} raised by {_fmt(t.key, t.raise_by)}")
        elif answer == RESUME_ONCE:
            await self._resume(agent, "resumed once")
        else:
            await self.store.set_question(agent, None)
            self._trips[agent] = Trip(t.agent, t.key, t.reason, t.tripped_at, t.raise_by, None)
            logger.info(
                "%s stays paused (%s)",
                agent,
                answer,
                extra={"action": "budget_kept", "agent": agent},
            )

    async def _resume(self, agent: str, how: str) -> None:
        await self._end_trip(agent, how)
        if self.hive.registry.get(agent) is not None:
            await self.hive.registry.update(agent, paused=False)

    async def _end_trip(self, agent: str, how: str) -> None:
        self._trips.pop(agent, None)
        self._paused_seen.discard(agent)
        self.guard.forget(agent)
        self._warned = {w for w in self._warned if w[0] != agent}
        if await self.store.clear(agent):
            logger.info(
                "breaker reset for %s: %s",
                agent,
                how,
                extra={"action": "budget_reset", "agent": agent},
            )
            self.hive.hub.publish("budget_reset", agent=agent, how=how)

    # -- hub and registry listeners (sync: they spawn the effects) ---------------------------

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(self._inflight.run(coro))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        task.add_done_callback(_log_failure)

    def _on_event(self, ev: HiveEvent) -> None:
        if ev.data.get("relayed"):
            self._on_relayed(ev)
        elif ev.kind == "message_sent":
            self._on_sent(ev.data)
        elif ev.kind == "question_resolved":
            qid = ev.data.get("id")
            for t in self._trips.values():
                if t.question_id is not None and t.question_id == qid:
                    self._spawn(self._act(t.agent, qid, str(ev.data.get("answer") or "")))
                    return

    def _on_relayed(self, ev: HiveEvent) -> None:
        """Another node's event: its breakers changed (refresh the view), or the operator
        answered there a question of a breaker this node owns (act on it)."""
        if ev.kind in ("budget_tripped", "budget_question", "budget_reset"):
            self._spawn(self._reload_remote())
        elif ev.kind == "agent_updated" and self._view_stale(ev.data.get("agent")):
            self._spawn(self._reload_remote())  # a missed event: the pushed row says otherwise
        elif ev.kind == "question_resolved":
            qid = ev.data.get("id")
            for t in self._trips.values():
                if t.question_id is not None and t.question_id == qid:
                    self._spawn(self._act_on_stored(t.agent, qid))
                    return

    async def _act_on_stored(self, agent: str, qid: int) -> None:
        """Act on the answer as stored (a relayed event may carry it trimmed)."""
        if self._questions is None:
            return
        q = await self._questions.get(qid)
        if q.answer is not None:
            await self._act(agent, qid, q.answer)

    def _on_sent(self, data: dict[str, Any]) -> None:
        sender, to = data.get("sender"), data.get("to")
        if data.get("kind") != "message" or not isinstance(sender, str) or not isinstance(to, str):
            return
        if sender in (OPERATOR, SYSTEM) or sender in self._trips:
            return
        cfg = self.hive.config.budgets
        per_sender, per_pair = cfg.runaway_messages_per_minute, cfg.runaway_exchanges_per_minute
        if per_sender:
            per_sender += int(self._runaway_raised.get((sender, "runaway_messages_per_minute"), 0))
        if per_pair:
            per_pair += int(self._runaway_raised.get((sender, "runaway_exchanges_per_minute"), 0))
        # the copies of one broadcast share their sent_at: the sender is counted once
        batch = (sender, data.get("sent_at"))
        first_copy = batch != self._last_batch.get(sender)
        self._last_batch[sender] = batch
        hit = self.guard.observe(
            sender, to, self.hive.clock.now(), per_sender, per_pair, count_sender=first_copy
        )
        if hit is not None:
            self._spawn(self._trip(sender, hit.key, hit.reason, hit.limit))

    def _agent_changed(self, name: str) -> None:
        if name not in self._trips:
            return
        rec = self.hive.registry.get(name)
        if rec is not None and rec.paused:
            self._paused_seen.add(name)
        elif rec is None or name in self._paused_seen:  # unpaused by hand, or destroyed
            self._spawn(self._end_trip(name, "unpaused by the operator" if rec else "agent gone"))

    async def _sweep_loop(self) -> None:
        while True:
            await self.store.sweep(iso(self.hive.clock.now() - KEEP_USAGE_SECONDS))
            await asyncio.sleep(self.hive.config.retention.sweep_interval_seconds)


def _limit_use(key: str, used: float, limit: float) -> LimitUse:
    return LimitUse(key=key, used=used, limit=limit, fraction=used / limit if limit > 0 else 0.0)


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.warning(
            "budget effect failed: %r", task.exception(), extra={"action": "budget_failed"}
        )


def _register_verbs(hive: Hive, budgets: BudgetsFeature) -> None:
    @hive.agent_rpc.handle(ReportTurn)
    async def report_turn(caller: Caller, req: ReportTurn) -> Ok:
        await budgets.record(caller.name, req)
        return Ok()

    @hive.host_rpc.handle(BudgetsReq)
    async def budgets_verb(caller: Caller, req: BudgetsReq) -> BudgetsOk:
        return await budgets.rows()
