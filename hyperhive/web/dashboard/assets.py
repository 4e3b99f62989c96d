"""The dashboard's static assets (`/static/...`), served from memory.

On main every load of the page sent its five assets through `StaticFiles` (a file stat, open
and read per request) and the gzip middleware (compressing 40 KB of JS again each time), on the
daemon's loop, while the page waited for them to run its first render. Here each file is read
once, gzipped once, and answered from memory.

Invariants:
- Only the regular files directly in `static/` (the package's own, never agent-written) are
  served; any other path is 404 in the one error shape. Only GET and HEAD.
- A request naming the file's current content hash (`?v=<hash>`, as the page links them) is
  cacheable for good (`immutable`): a change to the file changes the hash, so the browser never
  runs a stale one. Any other request is revalidated (`no-cache` + `ETag`, 304 on a match).
- The gzip body is sent only to a client that accepts gzip; `Vary: Accept-Encoding` always.
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path

from starlette.types import Receive, Scope, Send

from hyperhive.errors import BadRequest, NotFound
from hyperhive.httpapi import error_response

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
GZIP_MIN_BYTES = 1024
TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


@dataclass(frozen=True)
class Asset:
    body: bytes
    gz: bytes | None  # None: too small to be worth it
    media_type: str
    version: str  # the content hash the page links (`?v=`)

    @property
    def etag(self) -> str:
        return f'"{self.version}"'


def load_assets(directory: Path) -> dict[str, Asset]:
    out: dict[str, Asset] = {}
    for path in sorted(directory.iterdir()):
        if not path.is_file() or path.is_symlink():
            continue
        body = path.read_bytes()
        media = TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0]
        out[path.name] = Asset(
            body=body,
            gz=gzip.compress(body, 9, mtime=0) if len(body) >= GZIP_MIN_BYTES else None,
            media_type=media or "application/octet-stream",
            version=hashlib.sha1(body).hexdigest()[:10],
        )
    return out


class StaticAssets:
    """The ASGI app mounted at `/static`."""

    def __init__(self, directory: Path) -> None:
        self.assets = load_assets(directory)

    def versions(self) -> dict[str, str]:
        return {name: a.version for name, a in self.assets.items()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            await error_response(BadRequest("only GET and HEAD"), status=405)(scope, receive, send)
            return
        name = str(scope.get("path", "")).removeprefix(str(scope.get("root_path", "")))
        asset = self.assets.get(name.removeprefix("/"))
        if asset is None:
            await error_response(NotFound(f"no asset {name[:100]!r}"))(scope, receive, send)
            return
        headers = {h.decode("latin-1").lower(): v.decode("latin-1") for h, v in scope["headers"]}
        query = str(scope.get("query_string", b"").decode("latin-1"))
        current = f"v={asset.version}" in query.split("&")
        out: list[tuple[bytes, bytes]] = [
            (b"cache-control", (IMMUTABLE if current else REVALIDATE).encode()),
            (b"etag", asset.etag.encode()),
            (b"vary", b"Accept-Encoding"),
        ]
        if asset.etag in [t.strip() for t in headers.get("if-none-match", "").split(",")]:
            await send({"type": "http.response.start", "status": 304, "headers": out})
            await send({"type": "http.response.body", "body": b""})
            return
        body = asset.body
        if asset.gz is not None and "gzip" in headers.get("accept-encoding", ""):
            body = asset.gz
            out.append((b"content-encoding", b"gzip"))
        out += [
            (b"content-type", asset.media_type.encode()),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": out})
        await send(
            {"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body}
        )
