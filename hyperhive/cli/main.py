"""`hive`: the entry point. Every option has a `HIVE_…` environment variable."""

from __future__ import annotations

import sys
from typing import Any

import click

from hyperhive.cli.common import Ctx, fail
from hyperhive.errors import HiveError


class HiveGroup(click.Group):
    """Turns `HiveError`s (and unexpected errors) into one line on stderr and a non-zero exit."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort, SystemExit):
            raise
        except HiveError as exc:
            fail(exc, ctx.params.get("verbose", 0))
        except KeyboardInterrupt:
            sys.exit(130)
        except Exception as exc:
            fail(exc, ctx.params.get("verbose", 0))


@click.group(cls=HiveGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--home",
    envvar="HIVE_HOME",
    show_envvar=True,
    type=click.Path(file_okay=False),
    help="Hive state directory [default: /var/lib/hyperhive as root, else ~/.local/share/hyperhive].",
)
@click.option(
    "-v",
    "--verbose",
    count=True,
    envvar="HIVE_VERBOSE",
    show_envvar=True,
    help="More logging; tracebacks on errors.",
)
@click.pass_context
def cli(ctx: click.Context, home: str | None, verbose: int) -> None:
    """hyperhive: a hive of sandboxed Claude Code agents, steered by a human operator."""
    ctx.obj = Ctx(home, verbose)


def _register() -> None:
    from hyperhive.cli import (
        agent,
        agents,
        approvals,
        bench,
        budgets,
        db,
        demo,
        lifecycle,
        messages,
        nodes,
        permissions,
        questions,
        search,
        serve,
    )

    for mod in (
        serve,
        demo,
        agents,
        lifecycle,
        agent,
        messages,
        questions,
        permissions,
        approvals,
        budgets,
        bench,
        db,
        nodes,
        search,
    ):
        for command in mod.COMMANDS:
            cli.add_command(command)
    try:
        from hyperhive.cli.sim import sim
    except ImportError:  # pragma: no cover - sim is part of the package
        pass
    else:
        cli.add_command(sim)


_register()


def main() -> None:
    cli(prog_name="hive")
