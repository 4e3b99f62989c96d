"""Operator questions: an agent asks, the human answers later (`hive.questions`).

Flow: `ask` stores the question and returns its id at once (the asking turn never blocks).
The operator answers (host socket, CLI, dashboard — all through `answer`), or the question
expires at its deadline (`[expired]`), or it is cancelled (`[cancelled]`, by the operator or
by the asker through `cancel_thread q:N`). Every resolution sends one `system` event
`operator_answered{id, question, answer}` into the inbox of whoever asked.

Invariants:
- Resolution is decided once, in the database (see `SqliteQuestionStore.resolve`): the loser
  of an answer/expiry/cancel race is a no-op (expiry, cancel) or a `Conflict` (an operator
  answer), so exactly one `operator_answered` event is sent per question.
- The answer is one string: the chosen options in the question's order, then the free text,
  joined with ", ". A non-multi question takes at most one option; an answer needs at least
  one option or some text.
- A question belongs to the asker's incarnation (generation): the answer to one asked by an
  agent since destroyed is recorded but never delivered to a new agent of the same name, and
  the new one does not see it among its open threads.
- Deadlines survive restarts: they are rows, and one `DeadlineScheduler` task expires what is
  overdue on start and then sleeps until the earliest deadline.
- Resolve-and-notify runs to completion even if its caller is cancelled (`Inflight`); a hard
  crash between the two commits loses the event (the row still shows the answer).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from hyperhive.clock import iso, parse_iso
from hyperhive.core.deadlines import DeadlineScheduler, Inflight
from hyperhive.core.feature import BaseFeature
from hyperhive.core.followups import CancelOutcome
from hyperhive.core.rpc import Caller
from hyperhive.core.store.base import Decide, QuestionStore
from hyperhive.errors import BadRequest, Conflict, HiveError, NotFound
from hyperhive.wire.attention import AttentionItem
from hyperhive.wire.followups import (
    ANSWER_TEXT_MAX,
    CANCELLED,
    EXPIRED,
    OPTION_MAX,
    OPTIONS_MAX,
    QUESTION_MAX,
    TTL_MAX,
    AnswerQuestion,
    AskOperator,
    CancelQuestion,
    FollowupView,
    QuestionAnswered,
    QuestionCancelled,
    QuestionQueued,
    QuestionRow,
    Questions,
    QuestionsOk,
)

if TYPE_CHECKING:
    from hyperhive.core.hive import Hive

logger = logging.getLogger(__name__)

BATCH = 100


def _clean_question(question: str, options: Sequence[str], ttl_seconds: float | None) -> str:
    text = question.strip()
    if not text:
        raise BadRequest("the question is empty")
    if len(text) > QUESTION_MAX:
        raise BadRequest(f"the question is {len(text)} characters; the limit is {QUESTION_MAX}")
    if len(options) > OPTIONS_MAX:
        raise BadRequest(f"{len(options)} options; the limit is {OPTIONS_MAX}")
    for opt in options:
        if not opt.strip():
            raise BadRequest("an option is empty")
        if len(opt) > OPTION_MAX:
            raise BadRequest(f"option {opt[:40]!r}... is over {OPTION_MAX} characters")
    if len({o.strip() for o in options}) != len(options):
        raise BadRequest("options must be distinct")
    if ttl_seconds is not None and not 0 < ttl_seconds <= TTL_MAX:
        raise BadRequest(f"ttl_seconds must be > 0 and at most {TTL_MAX:.0f} (30 days)")
    return text


def _option_index(q: QuestionRow, raw: str) -> int:
    choice = raw.strip()
    for i, opt in enumerate(q.options):
        if opt == choice:
            return i
    listed = ", ".join(f"{i}) {o}" for i, o in enumerate(q.options, 1))
    if not q.options:
        raise BadRequest(f"question #{q.id} has no options; answer with text")
    if choice.isdigit():
        n = int(choice)
        if 1 <= n <= len(q.options):
            return n - 1
        raise BadRequest(
            f"option {n} is out of range: question #{q.id} has {len(q.options)} option(s): {listed}"
        )
    raise BadRequest(f"question #{q.id} has no option {choice!r}; its options are: {listed}")


def compose_answer(q: QuestionRow, options: Sequence[str], text: str | None) -> str:
    """The single answer string, or `BadRequest` saying what is wrong with the choice."""
    chosen = sorted({_option_index(q, raw) for raw in options})
    if len(chosen) > 1 and not q.multi:
        picked = ", ".join(q.options[i] for i in chosen)
        raise BadRequest(
            f"question #{q.id} takes one option, not {len(chosen)} ({picked}); "
            "put anything more in the text"
        )
    free = (text or "").strip()
    if len(free) > ANSWER_TEXT_MAX:
        raise BadRequest(f"the answer text is over {ANSWER_TEXT_MAX} characters")
    if not chosen and not free:
        what = "an option or some text" if q.options else "some text"
        raise BadRequest(f"an answer to question #{q.id} needs {what}")
    return ", ".join([q.options[i] for i in chosen] + ([free] if free else []))


class QuestionsFeature(BaseFeature):
    """Operator questions; started as `hive.questions`."""

    name = "questions"

    def __init__(self) -> None:
        self._inflight = Inflight()

    async def start(self, hive: Hive) -> None:
        await super().start(hive)
        self.store: QuestionStore = hive.storage.questions
        self.scheduler = DeadlineScheduler(
            "question-deadlines", hive.clock, self._next_deadline, self.expire_due
        )
        hive.followups.add_source("q", self._open_followups, self._cancel_followup)
        _register_verbs(hive, self)
        self.scheduler.start(hive.tasks)

    async def aclose(self) -> None:
        await self._inflight.aclose()

    # -- the API every surface uses --------------------------------------------------------

    async def ask(
        self,
        asker: str,
        question: str,
        options: Sequence[str] = (),
        multi: bool = False,
        ttl_seconds: float | None = None,
    ) -> QuestionRow:
        self.hive.registry.require(asker)
        text = _clean_question(question, options, ttl_seconds)
        opts = [o.strip() for o in options]
        now = self.hive.clock.now()
        deadline = now + ttl_seconds if ttl_seconds is not None else None
        q = await self.store.insert(
            asker,
            text,
            opts,
            multi and bool(opts),
            iso(now),
            iso(deadline) if deadline is not None else None,
        )
        if deadline is not None:
            self.scheduler.poke(deadline)
        logger.info(
            "question #%d from %s", q.id, asker, extra={"action": "question_added", "agent": asker}
        )
        self.hive.hub.publish(
            "question_added",
            id=q.id,
            agent=asker,
            question=q.question,
            options=q.options,
            multi=q.multi,
            asked_at=q.asked_at,
            deadline_at=q.deadline_at,
        )
        return q

    async def pending(self) -> list[QuestionRow]:
        return await self.store.pending()

    async def attention(self) -> list[AttentionItem]:
        """Open operator questions, for the dashboard's attention bar."""
        n = len(await self.store.pending())
        return [AttentionItem(kind="questions", count=n, label="open questions", href="#questions")]

    async def get(self, qid: int) -> QuestionRow:
        q = await self.store.get(qid)
        if q is None:
            raise NotFound(f"no operator question #{qid}")
        return q

    async def answer(
        self, qid: int, options: Sequence[str] = (), text: str | None = None
    ) -> QuestionRow:
        """The operator's answer. `Conflict` if the question is already resolved."""
        q, won = await self._resolve(qid, lambda q: compose_answer(q, options, text), "answered")
        if not won:
            raise Conflict(f"question #{qid} is already resolved (answer: {q.answer})")
        return q

    async def cancel(self, qid: int) -> tuple[QuestionRow, bool]:
        """Resolve with `[cancelled]`; (row, False) if it was already resolved (a no-op)."""
        return await self._resolve(qid, lambda q: CANCELLED, "cancelled")

    async def expire_due(self, now: float) -> None:
        """Resolve every open question whose deadline is at or before `now` with `[expired]`."""
        cutoff = iso(now)
        while True:
            ids = await self.store.overdue(cutoff, BATCH)
            for qid in ids:
                await self._resolve(qid, lambda q: EXPIRED, "expired")
            if len(ids) < BATCH:
                return

    # -- internals --------------------------------------------------------------------------

    async def _next_deadline(self) -> float | None:
        at = await self.store.next_deadline()
        return parse_iso(at) if at is not None else None

    async def _resolve(self, qid: int, decide: Decide, how: str) -> tuple[QuestionRow, bool]:
        return await self._inflight.run(self._resolve_and_notify(qid, decide, how))

    async def _resolve_and_notify(
        self, qid: int, decide: Decide, how: str
    ) -> tuple[QuestionRow, bool]:
        q, won = await self.store.resolve(qid, iso(self.hive.clock.now()), decide)
        if not won:
            return q, False
        logger.info(
            "question #%d %s: %s",
            q.id,
            how,
            q.answer,
            extra={"action": f"question_{how}", "agent": q.asker},
        )
        self.hive.hub.publish(
            "question_resolved",
            id=q.id,
            agent=q.asker,
            answer=q.answer,
            how=how,
            answered_at=q.answered_at,
        )
        if q.generation != self.hive.broker.generation(q.asker):
            logger.info(
                "question #%d: %s was destroyed since it asked; the answer is not delivered",
                q.id,
                q.asker,
                extra={"action": "question_notify_skipped", "agent": q.asker},
            )
            return q, True
        try:
            await self.hive.broker.system_event(
                q.asker, "operator_answered", id=q.id, question=q.question, answer=q.answer
            )
        except HiveError as exc:  # e.g. the asker was destroyed meanwhile
            logger.warning(
                "question #%d: could not tell %s: %s",
                q.id,
                q.asker,
                exc,
                extra={"action": "question_notify_failed", "agent": q.asker},
            )
        return q, True

    async def _open_followups(self, agent: str) -> list[FollowupView]:
        return [
            FollowupView(
                id=f"q:{q.id}",
                kind="question",
                summary=f"question to the operator: {_short(q.question)}",
                opened_at=q.asked_at,
                deadline_at=q.deadline_at,
            )
            for q in await self.store.pending(agent)
        ]

    async def _cancel_followup(self, agent: str, qid: int) -> CancelOutcome:
        q = await self.store.get(qid)
        if q is None or q.asker != agent:
            raise NotFound(f"you have no question #{qid} (get_open_threads lists yours)")
        row, won = await self.cancel(qid)
        if won:
            return CancelOutcome(True, f"question #{qid} cancelled")
        return CancelOutcome(False, f"question #{qid} was already resolved: {row.answer}")


def _short(text: str, n: int = 200) -> str:
    line = " ".join(text.split())
    return line if len(line) <= n else line[: n - 1] + "…"


def _register_verbs(hive: Hive, questions: QuestionsFeature) -> None:
    @hive.agent_rpc.handle(AskOperator)
    async def ask_operator(caller: Caller, req: AskOperator) -> QuestionQueued:
        q = await questions.ask(caller.name, req.question, req.options, req.multi, req.ttl_seconds)
        return QuestionQueued(id=q.id, deadline_at=q.deadline_at)

    @hive.host_rpc.handle(Questions)
    async def list_questions(caller: Caller, req: Questions) -> QuestionsOk:
        return QuestionsOk(questions=await questions.pending())

    @hive.host_rpc.handle(AnswerQuestion)
    async def answer(caller: Caller, req: AnswerQuestion) -> QuestionAnswered:
        q = await questions.answer(req.id, req.options, req.text)
        assert q.answer is not None
        return QuestionAnswered(id=q.id, answer=q.answer)

    @hive.host_rpc.handle(CancelQuestion)
    async def cancel_question(caller: Caller, req: CancelQuestion) -> QuestionCancelled:
        q, won = await questions.cancel(req.id)
        return QuestionCancelled(id=q.id, cancelled=won, answer=q.answer or "")
