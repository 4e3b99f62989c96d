"""The operator dashboard: one live page over a JSON API and the hive's event feed.

Modules: `views` (pure shaping of core values) → `state` (`/api/state`) → `api` (every JSON
route, one table) → `stream` (history + SSE) → `security` (token, session, CSRF) → `app` (the
ASGI app) → `server` (bound and served in the daemon's loop). `feature` (the daemon's
dashboard feature) starts it.
"""

from __future__ import annotations

from hyperhive.web.dashboard.app import build_app
from hyperhive.web.dashboard.server import DashboardServer

__all__ = ["DashboardServer", "build_app"]
