"""Wire types for what an agent is waiting on: operator questions, reminders, open threads
(*followups* in the core's words) and the agent's free-text status. Pure types (pydantic), registered with `@verb`; no I/O.

Agent socket (every agent and the manager): `ask_operator`, `remind`,
`count_pending_reminders`, `get_open_threads`, `cancel_thread`, `set_status`.
Host socket (additions beyond v1): `questions`, `answer`, `cancel_question`.

Invariants: the limits below are the single source for both the wire and the core (which
re-checks them, because the dashboard calls the core directly); timestamps are RFC 3339 UTC
strings with a `Z`; optional fields are omitted on the wire, never null.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from hyperhive.wire.agent import BODY_MAX
from hyperhive.wire.base import Request, Response, verb

QUESTION_MAX = 4000  # characters in a question
OPTION_MAX = 200  # characters in one option
OPTIONS_MAX = 20  # options per question
ANSWER_TEXT_MAX = 4000  # operator free text
TTL_MAX = 30 * 86400.0  # a question can wait at most 30 days
REMINDER_BODY_MAX = 4096  # longer reminders go to a file under /state
REMINDER_HORIZON = 366 * 86400.0  # how far ahead a reminder may be set
REMINDER_FILE_ROOT = "/state"
STATUS_TEXT_MAX = 200
EXPIRED = "[expired]"
CANCELLED = "[cancelled]"


class QuestionRow(BaseModel):
    """One operator question, as stored and as listed. `answered_at`/`answer` are set once."""

    model_config = ConfigDict(frozen=True)
    id: int
    asker: str
    question: str
    options: list[str] = Field(default_factory=list)
    multi: bool = False
    asked_at: str
    deadline_at: str | None = None
    target: str = "operator"
    answered_at: str | None = None
    answer: str | None = None
    generation: int | None = None  # the asker's incarnation; answers never reach another one

    @property
    def open(self) -> bool:
        return self.answered_at is None


class ReminderRow(BaseModel):
    """One reminder. `status`: pending → delivered | failed (after `attempts` tries)."""

    model_config = ConfigDict(frozen=True)
    id: int
    agent: str
    body: str
    file_path: str | None = None
    due_at: str
    created_at: str
    attempts: int = 0
    status: Literal["pending", "delivered", "failed"] = "pending"
    delivered_at: str | None = None
    last_error: str | None = None
    generation: int | None = None  # the incarnation that set it; never delivered to another


class FollowupView(BaseModel):
    """Something an agent opened and is still waiting on. `id` is `<prefix>:<n>` (`q:12` = a
    question, `a:7` = an approval request) and is what `cancel_thread` takes."""

    model_config = ConfigDict(frozen=True)
    id: str
    kind: str
    summary: str
    opened_at: str
    deadline_at: str | None = None


# -- agent socket -------------------------------------------------------------------------------


@verb("agent")
class AskOperator(Request):
    """Queue a question for the human operator; returns its id at once (the turn does not
    block). The answer arrives later as a `system` event `operator_answered{id, question,
    answer}` in the asker's inbox; `[expired]` after `ttl_seconds`, `[cancelled]` on cancel."""

    cmd: Literal["ask_operator"]
    question: str = Field(min_length=1, max_length=QUESTION_MAX)
    options: list[str] = Field(default_factory=list, max_length=OPTIONS_MAX)
    multi: bool = False
    ttl_seconds: float | None = Field(default=None, gt=0, le=TTL_MAX)


class QuestionQueued(Response):
    id: int
    deadline_at: str | None = None


@verb("agent")
class Remind(Request):
    """A message to self, delivered later (sender `system`, kind `reminder`). Exactly one of
    `delay_seconds` / `at_unix_timestamp`. Over 4096 characters: write the text to a file
    under /state and pass `file_path`."""

    cmd: Literal["remind"]
    message: str = Field(min_length=1, max_length=BODY_MAX)
    delay_seconds: float | None = Field(default=None, ge=0)
    at_unix_timestamp: float | None = None
    file_path: str | None = Field(default=None, max_length=1024)


class ReminderScheduled(Response):
    id: int
    due_at: str


@verb("agent")
class CountPendingReminders(Request):
    cmd: Literal["count_pending_reminders"]


class PendingReminders(Response):
    count: int


@verb("agent")
class GetOpenThreads(Request):
    """The caller's open threads (unanswered questions, pending requests), oldest first."""

    cmd: Literal["get_open_threads"]


class OpenThreads(Response):
    threads: list[FollowupView]


@verb("agent")
class CancelThread(Request):
    """Withdraw one of the caller's open threads by id (`q:12`, `a:7`)."""

    cmd: Literal["cancel_thread"]
    id: str = Field(min_length=3, max_length=40)


class FollowupCancelled(Response):
    id: str
    cancelled: bool  # false: it was already resolved (a no-op)
    note: str | None = None


@verb("agent")
class SetStatus(Request):
    """Short free text shown on the dashboard and in `agent_status` (empty text clears it)."""

    cmd: Literal["set_status"]
    text: str = Field(max_length=BODY_MAX)  # the core refuses > STATUS_TEXT_MAX with a reason


class StatusSet(Response):
    status_text: str | None = None
    status_set_at: str | None = None


# -- host socket (additions beyond v1) ----------------------------------------------------------


@verb("host")
class Questions(Request):
    """Pending operator questions, oldest first."""

    cmd: Literal["questions"]


class QuestionsOk(Response):
    questions: list[QuestionRow]


@verb("host")
class AnswerQuestion(Request):
    """Answer a question: `options` are option texts (or 1-based numbers); any subset when the
    question is `multi`, at most one otherwise; `text` is free text, always allowed."""

    cmd: Literal["answer"]
    id: int
    options: list[str] = Field(default_factory=list, max_length=OPTIONS_MAX)
    text: str | None = Field(default=None, max_length=ANSWER_TEXT_MAX)


class QuestionAnswered(Response):
    id: int
    answer: str


@verb("host")
class CancelQuestion(Request):
    """Resolve a pending question with `[cancelled]`; a no-op on a resolved one."""

    cmd: Literal["cancel_question"]
    id: int


class QuestionCancelled(Response):
    id: int
    cancelled: bool  # false: it was already resolved (a no-op)
    answer: str
