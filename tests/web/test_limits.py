"""Input limits on the operator's HTTP surfaces (issue #12): deeply nested JSON is a 400 in
the one error shape on every POST route of the dashboard and on the agent page (it was a 500
RecursionError), and a body over the cap is refused as it streams in (413), never read whole
first (a 200 MiB POST took the daemon from 90 to 267 MiB)."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from hyperhive.core.hive import Hive
from hyperhive.httpapi import SEND_BODY_MAX
from hyperhive.web.dashboard.api import BODY_BYTES_MAX, api_specs
from tests.support.httpapi import assert_error, fill
from tests.web.conftest import DashClient

CAP = max(BODY_BYTES_MAX, SEND_BODY_MAX)  # the page's /send allows 4 bytes a character
DEEP = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECT = b'{"body": ' + DEEP + b"}"


def post_urls(hive: Hive) -> list[str]:
    urls = [fill(s.path, name="manager", id="1") for s in api_specs(hive) if s.method == "POST"]
    return [*urls, "/agent/manager/send"]


async def test_deep_json_is_a_bad_request_everywhere(dhive: Hive, client: DashClient) -> None:
    urls = post_urls(dhive)
    assert len(urls) >= 18
    for url in urls:
        for raw in (DEEP, DEEP_OBJECT):
            r = await client.http.post(
                url,
                content=raw,
                headers={"X-CSRF-Token": client.csrf, "Content-Type": "application/json"},
            )
            assert_error(r, 400, "bad_request")
            assert "nested" in r.json()["error"], (url, r.json())


async def test_an_oversized_declared_body_is_refused_unread(
    dhive: Hive, client: DashClient
) -> None:
    for url in post_urls(dhive):
        r = await client.http.post(
            url,
            content=b"{" + b" " * (CAP + 10) + b"}",
            headers={"X-CSRF-Token": client.csrf, "Content-Type": "application/json"},
        )
        assert_error(r, 413, "too_large")


async def chunked_post_without_end(client: DashClient, url: str, size: int) -> bytes:
    """POST `size` bytes chunked and never send the last chunk; the answer's head."""
    base = urlsplit(str(client.http.base_url))
    reader, writer = await asyncio.open_connection(base.hostname, base.port)
    cookies = "; ".join(f"{k}={v}" for k, v in client.http.cookies.items())
    head = (
        f"POST {url} HTTP/1.1\r\nHost: {base.netloc}\r\nContent-Type: application/json\r\n"
        f"Transfer-Encoding: chunked\r\nX-CSRF-Token: {client.csrf}\r\nCookie: {cookies}\r\n\r\n"
    )
    writer.write(head.encode())
    chunk = 64 * 1024
    sent = 0
    try:
        while sent < size:
            n = min(chunk, size - sent)
            writer.write(f"{n:x}\r\n".encode() + b" " * n + b"\r\n")
            await writer.drain()
            sent += n
        # no terminating chunk: a server that reads the whole body first never answers
        return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
    except ConnectionResetError:
        return b"reset before an answer"
    finally:
        writer.close()


async def test_a_streamed_body_over_the_cap_is_refused_as_it_arrives(
    dhive: Hive, client: DashClient
) -> None:
    for url in ("/api/inbox/reply", "/agent/manager/send"):
        head = await chunked_post_without_end(client, url, CAP + 100_000)
        assert head.startswith(b"HTTP/1.1 413"), (url, head[:200])


async def test_a_405_names_the_allowed_methods(dhive: Hive, client: DashClient) -> None:
    for url in ("/api/state", "/agent/manager/api/state"):
        r = await client.post(url, json={})
        assert_error(r, 405)
        assert "GET" in r.headers.get("allow", "").split(", "), (url, dict(r.headers))
    r = await client.get("/api/inbox/read")
    assert r.status_code == 405 and r.headers.get("allow") == "POST"
