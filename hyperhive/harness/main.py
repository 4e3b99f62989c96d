"""`hive agent serve`: run one agent's harness (inside its sandbox, or as a plain process)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from pathlib import Path

from hyperhive.harness.loop import Harness, HarnessOptions
from hyperhive.harness.tunnel import ModelTunnel
from hyperhive.harness.web import serve_web

logger = logging.getLogger(__name__)


async def run_harness(opts: HarnessOptions) -> None:
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
        web = asyncio.create_task(serve_web(harness, opts.web_socket), name="harness-web")
    try:
        await harness.run()
    finally:
        if web is not None:
            web.cancel()
            await asyncio.gather(web, return_exceptions=True)


def default_paths(socket: Path | None, state: Path | None) -> tuple[Path, Path, Path]:
    sock = socket or Path("/run/hive/hive.sock")
    st = state or Path("/state")
    return sock, st, sock.parent / "web.sock"
