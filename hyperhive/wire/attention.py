"""What needs the operator: one count per kind, for the dashboard's attention bar and the tab
title. Pure types; no I/O.

A feature that has something for the operator to act on (open questions, pending approvals,
tool permission requests, failed agents, unread operator mail, tripped budgets) implements
`AttentionSource`; the dashboard gathers every source it was given and shows the non-zero
counts, each linking to `href` (an in-page anchor or a dashboard path).

Invariants: `kind` is a stable machine word (`questions`, `approvals`, `permissions`,
`failed_agents`, `operator_mail`, `budgets`, ...); `label` is plain words for people;
`count` is never negative.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field


class AttentionItem(BaseModel):
    """One kind of thing waiting for the operator."""

    model_config = ConfigDict(frozen=True)
    kind: str = Field(min_length=1, max_length=40, pattern=r"^[a-z_]+$")
    count: int = Field(ge=0)
    label: str = Field(min_length=1, max_length=80)  # e.g. "open questions"
    href: str = Field(max_length=200)  # e.g. "#questions"


@runtime_checkable
class AttentionSource(Protocol):
    """A feature with items for the attention bar."""

    async def attention(self) -> list[AttentionItem]: ...
