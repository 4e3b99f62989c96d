"""Shared CLI plumbing: the state-dir option, error printing, running coroutines, output."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

import click

from hyperhive.aio import aio_run
from hyperhive.client.host import HostClient
from hyperhive.errors import HiveError
from hyperhive.paths import HivePaths

T = TypeVar("T")


class Ctx:
    def __init__(self, home: str | None, verbose: int) -> None:
        self.paths = HivePaths.resolve(home)
        self.verbose = verbose

    def host(self) -> HostClient:
        return HostClient(self.paths.host_sock)


pass_ctx = click.make_pass_decorator(Ctx)


def setup_logging(verbose: int, default: int = logging.WARNING) -> None:
    level = logging.DEBUG if verbose >= 2 else logging.INFO if verbose == 1 else default
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine at the CLI edge, on uvloop when installed (5x cheaper socket I/O)."""
    return aio_run(coro)


def emit(data: Any, as_json: bool, human: Callable[[Any], str] | None = None) -> None:
    if as_json or human is None:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        text = human(data)
        if text:
            click.echo(text)


def done(as_json: bool, action: str, agents: Sequence[str], human: str, **extra: Any) -> None:
    """Report a command that changed something: `human` as a line, or with `--json`
    `{"ok": true, "action": ..., "agents": [...], **extra}` (the same for every such command)."""
    if as_json:
        emit({"ok": True, "action": action, "agents": list(agents), **extra}, True)
    else:
        click.echo(human)


Column = tuple[str, Callable[[dict[str, Any]], str]]  # (HEADER, cell of a row)


def table(columns: Sequence[Column], rows: Sequence[dict[str, Any]], empty: str) -> str:
    """Rows under a header line, each column as wide as its widest cell (the last one is not
    padded). Adding a column is adding one `(HEADER, fn)` pair to the caller's list."""
    if not rows:
        return empty
    cells = [[h for h, _ in columns], *([fn(r) for _, fn in columns] for r in rows)]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns) - 1)]
    return "\n".join(
        "  ".join([*(c.ljust(w) for c, w in zip(line, widths, strict=False)), line[-1]]).rstrip()
        for line in cells
    )


def fail(exc: BaseException, verbose: int) -> None:
    """Print the error (and its cause chain) on one line each; traceback only with -v."""
    if verbose:
        import traceback

        traceback.print_exception(exc)
    msg = f"error: {exc}"
    cause = exc.__cause__
    while cause is not None and not isinstance(exc, HiveError | click.ClickException):
        msg += f"\n  caused by: {cause}"
        cause = cause.__cause__
    click.echo(msg, err=True)
    sys.exit(1 if isinstance(exc, HiveError) else 2)


def json_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        envvar="HIVE_JSON",
        show_envvar=True,
        help="Print machine-readable JSON.",
    )(fn)
