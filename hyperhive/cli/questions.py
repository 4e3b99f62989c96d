"""Operator question commands: questions, answer, cancel-question (over the host socket)."""

from __future__ import annotations

from typing import Any

import click

from hyperhive.cli.common import Ctx, emit, json_option, pass_ctx, run


def _questions_text(data: dict[str, Any]) -> str:
    rows = data["questions"]
    if not rows:
        return "(no pending questions)"
    out = []
    for q in rows:
        flags = " [multi]" if q.get("multi") else ""
        deadline = f", expires {q['deadline_at'][:19]}Z" if q.get("deadline_at") else ""
        out.append(f"#{q['id']} from {q['asker']} (asked {q['asked_at'][:19]}Z{deadline}){flags}")
        out.extend(f"    {line}" for line in q["question"].splitlines() or [""])
        out.extend(f"    {i}) {opt}" for i, opt in enumerate(q.get("options", []), 1))
    return "\n".join(out)


@click.command()
@json_option
@pass_ctx
def questions(ctx: Ctx, as_json: bool) -> None:
    """List the operator questions waiting for an answer (oldest first)."""
    answer = run(ctx.host().call("questions"))
    emit(answer, as_json, _questions_text)


@click.command()
@click.argument("question_id", metavar="ID", type=int)
@click.option(
    "--option",
    "-o",
    "options",
    multiple=True,
    help="A chosen option, by its text or 1-based number (repeat on a multi question).",
)
@click.option("--text", "-t", default=None, help="Free text, added after the chosen options.")
@json_option
@pass_ctx
def answer(
    ctx: Ctx, question_id: int, options: tuple[str, ...], text: str | None, as_json: bool
) -> None:
    """Answer question ID; the asker gets the answer in its inbox."""
    result = run(ctx.host().call("answer", id=question_id, options=list(options), text=text))
    emit(result, as_json, lambda a: f"answered #{a['id']}: {a['answer']}")


@click.command(name="cancel-question")
@click.argument("question_id", metavar="ID", type=int)
@json_option
@pass_ctx
def cancel_question(ctx: Ctx, question_id: int, as_json: bool) -> None:
    """Cancel question ID (the asker gets '[cancelled]'); a resolved one is left as it is."""
    result = run(ctx.host().call("cancel_question", id=question_id))
    emit(
        result,
        as_json,
        lambda a: (
            f"cancelled #{a['id']}"
            if a["cancelled"]
            else f"#{a['id']} was already resolved: {a['answer']}"
        ),
    )


COMMANDS = [questions, answer, cancel_question]
