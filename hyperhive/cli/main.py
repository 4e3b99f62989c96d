"""`hive`: the entry point. Every option has a `HIVE_…` environment variable.

Commands are loaded lazily (`hyperhive.cli.lazy`): an invocation imports only the module of
the command it runs, so `hive send` does not pay for the daemon's imports."""

from __future__ import annotations

import sys
from typing import Any

import click

from hyperhive.cli.common import Ctx, fail
from hyperhive.cli.lazy import COMMANDS, LazyGroup
from hyperhive.errors import HiveError


class HiveGroup(LazyGroup):
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


@click.group(
    cls=HiveGroup,
    lazy=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
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


def main() -> None:
    cli(prog_name="hive")
