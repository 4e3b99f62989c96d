"""Who may use the dashboard, and forged requests refused: one pure-ASGI middleware.

Rules, in order, for every HTTP request:

1. **Host.** On a loopback bind without a token, the `Host` header must name a loopback host
   (`127.0.0.1`, `localhost`, `[::1]`): a DNS-rebinding page cannot reach the API.
2. **Operator token.** When a token is configured (required for a non-loopback bind), every
   request except `/login` and `/static/*` must carry it: `Authorization: Bearer <token>` or
   the cookie `/login?token=<token>` sets. Without it: 401 in the one error shape (a small
   page for browser navigations).
3. **Session.** A request without a session cookie gets one (`hh_sid_<port>`, HttpOnly) plus
   its CSRF token in a cookie the page's script can read (`hh_csrf_<port>`); the token is an
   HMAC of the session id under a per-process secret, so nothing is stored.
4. **Forgery.** A state-changing request (not GET/HEAD/OPTIONS) is refused (403) when its
   `Origin` names another host, when `Sec-Fetch-Site` says `cross-site`/`same-site`, or —
   unless it authenticates with a Bearer header, which no other site can send — when its
   `X-CSRF-Token` header is not the token of its session.

Invariant: secrets are compared in constant time; the token never appears in a response.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import secrets
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hyperhive.errors import Forbidden, HiveError, error_body

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "x-csrf-token"
PUBLIC_PREFIXES = ("/login", "/static/")


class Unauthorized(HiveError):
    """The dashboard needs the operator token and the request did not carry it."""

    code = "unauthorized"
    http_status = 401


def is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def split_listen(listen: str) -> tuple[str, int]:
    """`HOST:PORT` (IPv6 as `[::1]:PORT`) → (host, port); ConfigError-free: raises ValueError."""
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"dashboard address {listen!r} is not HOST:PORT")
    return host.strip("[]"), int(port)


def _host_only(netloc: str) -> str:
    """`host:port` / `[v6]:port` → lower-case host without the port."""
    netloc = netloc.strip().lower()
    if netloc.startswith("["):
        return netloc[1 : netloc.find("]")] if "]" in netloc else netloc
    return netloc.rsplit(":", 1)[0] if netloc.count(":") == 1 else netloc


class Guard:
    """The middleware. `token`: the operator token (None: none configured). `port` names the
    cookies, so two hives on one machine keep separate sessions."""

    def __init__(self, app: ASGIApp, *, token: str | None, loopback_only: bool, port: int) -> None:
        self.app = app
        self.token = token
        self.loopback_only = loopback_only and not token
        self.secret = secrets.token_bytes(32)
        self.sid_cookie = f"hh_sid_{port}"
        self.csrf_cookie = f"hh_csrf_{port}"
        self.token_cookie = f"hh_token_{port}"

    def csrf_for(self, sid: str) -> str:
        return hmac.new(self.secret, sid.encode(), hashlib.sha256).hexdigest()

    def token_ok(self, candidate: str | None) -> bool:
        return (
            self.token is not None
            and candidate is not None
            and hmac.compare_digest(candidate.encode(), self.token.encode())
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        cookies = _cookies(headers.get("cookie", ""))
        path: str = scope.get("path", "/")
        method: str = scope.get("method", "GET")
        if path == "/login" and self.token is not None:
            await self._login(scope, send)
            return
        try:
            bearer = self._check_access(headers, cookies, path)
            sid = cookies.get(self.sid_cookie, "")
            fresh = not (16 <= len(sid) <= 64 and sid.isalnum())
            if fresh:
                sid = secrets.token_hex(16)
            if method not in SAFE_METHODS:
                self._check_forgery(headers, sid if not fresh else "", bearer)
        except HiveError as exc:
            await self._refuse(scope, send, exc)
            return
        csrf = self.csrf_for(sid)
        scope.setdefault("state", {})
        scope["state"]["csrf_token"] = csrf
        scope["state"]["csrf_cookie"] = self.csrf_cookie
        if not fresh:
            await self.app(scope, receive, send)
            return

        async def send_with_cookies(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = [
                    (b"set-cookie", _cookie(self.sid_cookie, sid, http_only=True)),
                    (b"set-cookie", _cookie(self.csrf_cookie, csrf, http_only=False)),
                ]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_cookies)

    def _check_access(self, headers: dict[str, str], cookies: dict[str, str], path: str) -> bool:
        """Raise unless the request may reach the app; True when it carries a Bearer token."""
        if self.loopback_only:
            host = headers.get("host", "")
            if not is_loopback(_host_only(host)):
                raise Forbidden(f"host {host!r} is not this dashboard's (loopback only)")
        if self.token is None:
            return False
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            if self.token_ok(auth[7:].strip()):
                return True
            raise Unauthorized("the bearer token is not the operator token")
        if path.startswith(PUBLIC_PREFIXES):
            return False
        if self.token_ok(cookies.get(self.token_cookie)):
            return False
        raise Unauthorized("this dashboard needs the operator token: open /login?token=<token>")

    def _check_forgery(self, headers: dict[str, str], sid: str, bearer: bool) -> None:
        host = _host_only(headers.get("host", ""))
        origin = headers.get("origin")
        if origin is not None and origin != "null":
            if _host_only(urlsplit(origin).netloc) != host or not urlsplit(origin).netloc:
                raise Forbidden(f"cross-site request refused (origin {origin})")
        elif origin == "null":
            raise Forbidden("cross-site request refused (opaque origin)")
        site = headers.get("sec-fetch-site")
        if site is not None and site not in ("same-origin", "none"):
            raise Forbidden(f"cross-site request refused (Sec-Fetch-Site: {site})")
        if bearer:
            return
        given = headers.get(CSRF_HEADER, "")
        if not sid or not given or not hmac.compare_digest(given, self.csrf_for(sid)):
            raise Forbidden(
                "missing or stale CSRF token: reload the page (scripts: send "
                f"X-CSRF-Token = the {self.csrf_cookie} cookie, or use a Bearer token)"
            )

    async def _login(self, scope: Scope, send: Send) -> None:
        """`/login?token=T`: a right token sets the token cookie (a week) and goes to `/`."""
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        given = (query.get("token") or [""])[0]
        if not self.token_ok(given):
            await self._refuse(scope, send, Unauthorized("that is not the operator token"))
            return
        cookie = _cookie(self.token_cookie, given, http_only=True, max_age=7 * 86400)
        await send(
            {
                "type": "http.response.start",
                "status": 303,
                "headers": [
                    (b"location", b"/"),
                    (b"set-cookie", cookie),
                    (b"content-length", b"0"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b""})

    async def _refuse(self, scope: Scope, send: Send, exc: HiveError) -> None:
        path: str = scope.get("path", "/")
        machine = path.startswith(("/api/", "/dashboard/")) or path == "/metrics"
        wants_page = scope.get("method") == "GET" and not machine
        if wants_page and isinstance(exc, Unauthorized):
            body = _LOGIN_PAGE.encode()
            ctype = b"text/html; charset=utf-8"
        else:
            body = json.dumps(error_body(exc)).encode()
            ctype = b"application/json"
        await send(
            {
                "type": "http.response.start",
                "status": exc.http_status,
                "headers": [(b"content-type", ctype), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _cookies(header: str) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except Exception:
        return {}
    return {k: v.value for k, v in jar.items()}


def _cookie(name: str, value: str, *, http_only: bool, max_age: int | None = None) -> bytes:
    parts = [f"{name}={value}", "Path=/", "SameSite=Strict"]
    if http_only:
        parts.append("HttpOnly")
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    return "; ".join(parts).encode("latin-1")


def load_token(path: str) -> str | None:
    """The operator token from `[dashboard] token_file` (None when unset)."""
    if not path:
        return None
    from pathlib import Path

    from hyperhive.errors import ConfigError

    try:
        text = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"dashboard.token_file: cannot read {path}: {exc.strerror}") from exc
    if len(text) < 16:
        raise ConfigError(
            f"dashboard.token_file: the token in {path} is shorter than 16 characters"
        )
    return text


_LOGIN_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>hyperhive · login</title><link rel="stylesheet" href="/static/theme.css"></head>
<body class="hh"><main class="login-note panel">
<h1 class="leet">4CC3SS D3N13D</h1>
<p>This dashboard needs the operator token. Open <code>/login?token=&lt;token&gt;</code>
(the token is in the file <code>[dashboard] token_file</code> of hive.toml names).</p>
</main></body></html>"""
