"""The dashboard's static assets, served from memory (`web/dashboard/assets.py`): read and
gzipped once, cacheable for good under the hash the page links, revalidated otherwise."""

from __future__ import annotations

import gzip
import re

from hyperhive.web import STATIC_DIR
from tests.web.conftest import DashClient


async def linked(client: DashClient) -> dict[str, str]:
    page = (await client.get("/")).text
    return dict(re.findall(r'/static/([a-z.]+)\?v=([0-9a-f]+)"', page))


async def test_the_linked_version_is_cached_for_good_and_gzipped(client: DashClient) -> None:
    versions = await linked(client)
    assert {"dashboard.js", "dashboard.css", "theme.css", "sharedstream.js"} <= set(versions)
    r = await client.get(
        f"/static/dashboard.js?v={versions['dashboard.js']}",
        headers={"Accept-Encoding": "gzip"},
    )
    assert r.status_code == 200
    assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert r.headers["content-encoding"] == "gzip"
    assert r.headers["content-type"].startswith("text/javascript")
    assert r.content == (STATIC_DIR / "dashboard.js").read_bytes()  # httpx decodes it
    assert len(gzip.compress(r.content)) >= int(r.headers["content-length"])


async def test_other_requests_revalidate(client: DashClient) -> None:
    r = await client.get("/static/dashboard.css", headers={"Accept-Encoding": "identity"})
    assert r.status_code == 200 and r.headers["cache-control"] == "no-cache"
    assert "content-encoding" not in r.headers
    assert r.content == (STATIC_DIR / "dashboard.css").read_bytes()
    etag = r.headers["etag"]
    again = await client.get("/static/dashboard.css", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    stale = await client.get("/static/dashboard.css?v=0123456789")  # an old page's link
    assert stale.status_code == 200 and stale.headers["cache-control"] == "no-cache"


async def test_unknown_paths_and_methods_answer_the_error_shape(client: DashClient) -> None:
    for path in ("/static/nope.js", "/static/../app.py", "/static/", "/static/a/b.css"):
        r = await client.get(path)
        assert r.status_code == 404, path
        assert r.json()["ok"] is False and r.json()["code"] == "not_found", path
    r = await client.post("/static/dashboard.js")
    assert r.status_code == 405 and r.json()["ok"] is False
    head = await client.http.head("/static/theme.css")
    assert head.status_code == 200 and head.content == b""
