"""The hive's web surfaces, served by the core.

- `dashboard/`: the operator dashboard (one live page plus its JSON API and event stream).
- `proxy.py`: each agent's own page, proxied from its harness, on the agent's page port.
- `templates/` and `static/`: Jinja2 templates and the shared assets (`theme.css` holds the
  palette every page links).
"""

from __future__ import annotations

from hyperhive.agentpage import ASSETS_DIR as WEB_DIR
from hyperhive.agentpage import STATIC_DIR, TEMPLATES_DIR

__all__ = ["STATIC_DIR", "TEMPLATES_DIR", "WEB_DIR"]
