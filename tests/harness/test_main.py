"""The harness's entry (`hyperhive.harness.main`): what its start-up imports, and the agent
page served on first demand."""

from __future__ import annotations

import asyncio
import json
import stat
import subprocess
import sys
from pathlib import Path

import httpx

from hyperhive.harness.main import bind_unix, first_connection

# Heavy modules the harness must not import before its first turn and idle: pydantic (the core
# validates the agent config; the harness reads the dict) and the agent page's stack (loaded on
# the page's first request).
NOT_AT_START = ("pydantic", "pydantic_core", "starlette", "uvicorn", "sse_starlette", "anyio")


def test_start_path_imports_no_pydantic_nor_the_page_stack() -> None:
    """Up to the harness's run: its module, argument parsing and logging set-up."""
    code = (
        "import sys, json\n"
        "import hyperhive.harness.main as m\n"
        "m.serve = lambda *args: None\n"
        "m.main(['--socket', '/nonexistent/hive.sock', '--state-dir', '/nonexistent'])\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = {name.split(".")[0] for name in json.loads(out.stdout)}
    assert loaded.isdisjoint(NOT_AT_START), sorted(loaded & set(NOT_AT_START))
    assert "shutil" not in loaded  # argparse's help formatter would pull it in (and bz2, lzma)


def test_harness_modules_import_no_pydantic() -> None:
    """Every module a turn runs through, not only those imported at start, and the page."""
    modules = "agentview claude events loop main prompt settings stats stream tunnel web".split()
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module('hyperhive.harness.' + m)\n"
        "from hyperhive.harness.web import installed_page\n"
        "installed_page()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pydantic', 'pydantic_core')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


async def test_page_socket_waits_for_a_connection_then_serves_it(short_tmp: Path) -> None:
    path = short_tmp / "web.sock"
    sock = bind_unix(path)
    try:
        assert stat.S_ISSOCK(path.stat().st_mode)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600  # the agent's own (issue #12)
        waiting = asyncio.create_task(first_connection(sock))
        await asyncio.sleep(0)
        assert not waiting.done()

        transport = httpx.AsyncHTTPTransport(uds=str(path))
        async with httpx.AsyncClient(transport=transport, base_url="http://agent") as client:
            request = asyncio.create_task(client.get("/hello"))
            await asyncio.wait_for(waiting, 10)  # the connection waits in the backlog...

            from starlette.applications import Starlette
            from starlette.responses import PlainTextResponse
            from starlette.routing import Route

            from hyperhive.httpserver import serve_unix

            async def hello(request: object) -> PlainTextResponse:
                return PlainTextResponse("hi")

            app = Starlette(routes=[Route("/hello", hello)])
            server = asyncio.create_task(serve_unix(app, path, sock))
            try:
                response = await asyncio.wait_for(request, 10)  # ...and is served once up
                assert response.text == "hi"
                assert (await client.get("/hello")).text == "hi"
            finally:
                server.cancel()
                await asyncio.gather(server, return_exceptions=True)
        assert not path.exists()
    finally:
        sock.close()


def test_bind_unix_replaces_a_stale_socket_file(short_tmp: Path) -> None:
    path = short_tmp / "web.sock"
    bind_unix(path).close()  # leaves the file behind, as a killed harness would
    assert path.exists()
    sock = bind_unix(path)
    sock.close()
