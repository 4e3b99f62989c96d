"""The per-agent page: a live terminal into one agent, served by its harness next to its API
(`hyperhive.harness.web`) and by the core (`hyperhive.web.proxy`). Ground: both sides import
it, neither the other; its templates and assets are data files under `hyperhive/web/`.

`page_routes(h)` adds `GET /` (the page, `templates/agent.html`), `/favicon.ico` and
`/static/*` (the shared assets: `agent.js`, `sharedstream.js`, `agent.css` and the dashboard's
`theme.css`).

Invariants:
- Every URL in the page is relative, so the same page works at the core's
  `/agent/<name>/` proxy and at the agent's own port (`http://127.0.0.1:<port>/`).
- The page renders nothing it cannot get again: everything live comes from `/api/state`,
  `/events/history` and `/events/stream`; the template only carries the first paint.
- Asset URLs carry a content hash (`?v=`), so a harness upgraded under an open tab never
  mixes an old script with a new API.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

if TYPE_CHECKING:
    from jinja2 import Environment


ASSETS_DIR = Path(__file__).parent / "web"  # the templates and assets the web package ships
TEMPLATES_DIR = ASSETS_DIR / "templates"
STATIC_DIR = ASSETS_DIR / "static"
ASSETS = ("agent.css", "sharedstream.js", "agent.js", "theme.css")
ROLE_LABEL = {"manager": "m1nd", "agent": "ag3nt"}


@lru_cache(maxsize=1)
def _env() -> Environment:
    # imported on first render: the harness serves this page too, and jinja2 is a noticeable
    # part of an import budget paid at every agent start
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    return Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def asset_versions() -> dict[str, str]:
    """`{file: short content hash}` for the page's assets that exist (theme.css is optional)."""
    out: dict[str, str] = {}
    for name in ASSETS:
        path = STATIC_DIR / name
        if path.is_file():
            out[name] = hashlib.sha256(path.read_bytes()).hexdigest()[:10]
    return out


def render_page(name: str, role: str, model: str, state: str = "connecting") -> str:
    """The page's HTML (first paint only: the script fills in the rest from the API)."""
    return (
        _env()
        .get_template("agent.html")
        .render(
            name=name,
            role=role,
            role_label=ROLE_LABEL.get(role, role),
            role_word="manager" if role == "manager" else "agent",
            model=model,
            state=state,
            assets=asset_versions(),
        )
    )


def page_response(html: str) -> HTMLResponse:
    return HTMLResponse(
        html,
        headers={
            "Cache-Control": "no-cache",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
        },
    )


async def favicon(request: Request) -> Response:
    """`/favicon.ico`: the hive's icon (browsers ask for it even when a page names another)."""
    return Response(
        (STATIC_DIR / "favicon.svg").read_bytes(),
        media_type="image/svg+xml",
        headers={"Cache-Control": "max-age=86400"},
    )


def static_app() -> StaticFiles:
    return StaticFiles(directory=STATIC_DIR)


class PageOwner(Protocol):
    """What the page shows of its agent (the harness, `hyperhive.harness.loop.Harness`)."""

    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def model(self) -> str: ...

    @property
    def state(self) -> str: ...


def page_routes(h: PageOwner) -> list[BaseRoute]:
    """`/` and `/static` on the harness's own socket (the core serves its own copy)."""

    async def page(request: Request) -> Response:
        return page_response(render_page(h.name, h.kind, h.model, h.state))

    return [
        Route("/", page),
        Route("/favicon.ico", favicon),
        Mount("/static", app=static_app(), name="static"),
    ]
