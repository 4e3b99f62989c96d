"""`hive agent serve`: run one agent's harness (inside its sandbox, or as a plain process).

Start-up is on the path of every spawn, restart and rebuild, and what the harness imports it
carries while idle in every sandbox (`hive bench spawn` measures both; docs/harness.md):
- no pydantic: the core validates the agent's config and the harness reads the dict it sends
  (`agentview`); requests are framed by `hyperhive.wire.framing`, not the wire models;
- the agent's page: `web.sock` is bound once the harness is up (parked in its first recv), and
  its stack (starlette, uvicorn) is imported only when the page is first asked for, so it never
  delays the agent's first mail and an agent nobody looks at never carries it;
- `python -m hyperhive.harness.main` is `hive agent serve` without the `hive` CLI, whose entry
  module imports every command (the daemon, the sim, ...) that the harness never uses. Options
  and environment variables are those of `hive agent serve`; errors end it like the CLI does
  (one line on stderr, exit 1 for a `HiveError`, 2 otherwise; tracebacks with `-v`).
- tests/harness/test_main.py fails when the start path imports pydantic or the page's stack.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from hyperhive import tracing
from hyperhive.clock import parse_iso
from hyperhive.harness.loop import Harness
from hyperhive.harness.options import HarnessOptions
from hyperhive.harness.tunnel import ModelTunnel
from hyperhive.netio import bind_unix
from hyperhive.paths import WEB_DIR, WEB_SOCK

logger = logging.getLogger(__name__)


async def run_harness(opts: HarnessOptions) -> None:
    # The only work the harness hands to threads is its two stores' WAL checkpoints (short,
    # at most one a second each): one thread does, where the default pool would keep a
    # thread, and a malloc arena, per concurrent checkpoint for the harness's whole life.
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(1, thread_name_prefix="harness-io")
    )
    async with contextlib.AsyncExitStack() as stack:
        model_sock = os.environ.get("HIVE_MODEL_SOCKET")
        if model_sock and opts.base_url:
            tunnel = await stack.enter_async_context(ModelTunnel(opts.socket.parent / model_sock))
            opts.base_url = tunnel.rewrite(opts.base_url)
        await _run(opts)


async def _run(opts: HarnessOptions) -> None:
    harness = Harness(opts)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, harness.stop)
    loop.add_signal_handler(signal.SIGINT, harness.stop)
    web = None
    if opts.web_socket is not None:
        web = asyncio.create_task(_serve_web_once_up(harness, opts.web_socket), name="harness-web")
    try:
        await harness.run()
    finally:
        if web is not None:
            web.cancel()
            await asyncio.gather(web, return_exceptions=True)


async def _serve_web_once_up(harness: Harness, path: Path) -> None:
    """Serve the agent's page once the harness is up (its first state change: parked in its
    first recv), and load its stack (starlette, uvicorn: ~130 modules, ~6 MB, ~15 % of the
    start-up CPU) only when the page is first asked for: `web.sock` is bound at once, and the
    connections waiting in its backlog are served once the stack is loaded. An agent nobody
    looks at never carries it. Events replayed from earlier runs are older than this start."""
    started = time.time()
    async for ev in harness.bus.follow(harness.bus.last_id):
        if ev.kind == "state" and parse_iso(ev.ts) >= started:
            break
    else:
        return  # the harness ended before it was ever up
    sock = bind_unix(path)
    try:
        await first_connection(sock)
        from hyperhive.harness.web import serve_web

        await serve_web(harness, path, sock)
    finally:
        sock.close()
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # noqa: ASYNC240 - unlinking a socket file does not block


async def first_connection(sock: socket.socket) -> None:
    """Return once a connection waits on the listening `sock` (it is left there, unaccepted)."""
    loop = asyncio.get_running_loop()
    pending: asyncio.Future[None] = loop.create_future()

    def readable() -> None:
        if not pending.done():
            pending.set_result(None)

    loop.add_reader(sock.fileno(), readable)
    try:
        await pending
    finally:
        loop.remove_reader(sock.fileno())


def default_paths(socket: Path | None, state: Path | None) -> tuple[Path, Path, Path]:
    sock = socket or Path("/run/hive/hive.sock")
    st = state or Path("/state")
    return sock, st, sock.parent / WEB_DIR / WEB_SOCK


def serve(
    socket: Path | None, state_dir: Path | None, web_socket: Path | None, no_web: bool
) -> None:
    """Run the harness until it is stopped (both entry points end up here)."""
    from hyperhive.aio import aio_run

    sock, state, web = default_paths(socket, state_dir)
    opts = HarnessOptions.from_env(sock, state, None if no_web else (web_socket or web))
    aio_run(run_harness(opts))


def _path(env: str) -> Path | None:
    value = os.environ.get(env)
    return Path(value) if value else None


def main(argv: list[str] | None = None) -> None:
    """`python -m hyperhive.harness.main`: `hive agent serve` without the CLI's imports."""
    import argparse
    import sys

    from hyperhive.errors import HiveError

    def help_formatter(prog: str) -> argparse.HelpFormatter:
        # argparse's default formatter (built for every add_argument) asks shutil for the
        # terminal width, and shutil imports bz2 and lzma: ~3 ms and 0.5 MB the harness would
        # carry for its whole life, for a --help nobody asks a sandboxed harness for
        try:
            width = int(os.environ.get("COLUMNS", "")) or os.get_terminal_size().columns
        except (ValueError, OSError):
            width = 80
        return argparse.HelpFormatter(prog, width=width - 2)

    p = argparse.ArgumentParser(
        prog="python -m hyperhive.harness.main",
        description="Loop: wait for mail, run one Claude Code turn, record it, repeat.",
        formatter_class=help_formatter,
    )
    p.add_argument(
        "--socket",
        type=Path,
        default=_path("HIVE_AGENT_SOCKET"),
        help="the agent's hive socket [env HIVE_AGENT_SOCKET; default /run/hive/hive.sock]",
    )
    p.add_argument(
        "--state-dir",
        type=Path,
        default=_path("HIVE_STATE_DIR"),
        help="the agent's state dir [env HIVE_STATE_DIR; default /state]",
    )
    p.add_argument(
        "--web-socket",
        type=Path,
        default=_path("HIVE_WEB_SOCKET"),
        help="serve the agent's page here [env HIVE_WEB_SOCKET; default web/web.sock beside --socket]",
    )
    p.add_argument("--no-web", action="store_true", help="do not serve the agent's page")
    p.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=int(os.environ.get("HIVE_VERBOSE") or 0),
        help="more logging; tracebacks on errors [env HIVE_VERBOSE]",
    )
    args = p.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose >= 2 else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        try:
            serve(args.socket, args.state_dir, args.web_socket, args.no_web)
        finally:
            tracing.shutdown()  # flush the last spans (a no-op when tracing is off)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        if args.verbose:
            logger.exception("the harness failed")
        print(f"error: {exc}", file=sys.stderr, flush=True)
        sys.exit(1 if isinstance(exc, HiveError) else 2)


if __name__ == "__main__":
    main()
