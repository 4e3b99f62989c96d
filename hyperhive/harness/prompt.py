"""Pure text builders: the system prompt for a flavor and the wake prompt for one message.

The prompts are read as files beside `hyperhive.prompts` (package data, installed as files by
every install hyperhive supports) rather than through `importlib.resources`, whose import
(tempfile, random, zip support: ~4 ms, 0.4 MB) the harness would carry only for this.
"""

from __future__ import annotations

import json
from pathlib import Path
from string import Template
from typing import Any

from hyperhive import prompts


def system_prompt(kind: str, name: str, manager: str, state: str, role: str | None) -> str:
    flavor = "manager" if kind == "manager" else "agent"
    text = Path(prompts.__file__).with_name(f"{flavor}.md").read_text("utf-8")
    role_text = f"\n## Your role\n{role.strip()}\n" if role and role.strip() else ""
    return Template(text).safe_substitute(name=name, manager=manager, state=state, role=role_text)


def wake_prompt(msg: dict[str, Any], remaining: int) -> str:
    """Who it is from, the body, and how many more are unread."""
    sender = msg["from"]
    kind = msg.get("kind", "message")
    more = (
        f"{remaining} more unread message{'s' if remaining != 1 else ''} waiting (use recv)."
        if remaining
        else "No other unread messages."
    )
    if kind == "event":
        try:
            ev = json.loads(msg["body"])
            name = ev.pop("event", "event")
            detail = json.dumps(ev, ensure_ascii=False, indent=1)
            return f"[hyperhive] system event `{name}` (#{msg['id']}):\n{detail}\n\n{more}"
        except (ValueError, AttributeError):
            pass
    if kind == "reminder":
        return f"[hyperhive] reminder you set (#{msg['id']}):\n{msg['body']}\n\n{more}"
    return f"[hyperhive] message #{msg['id']} from {sender}:\n{msg['body']}\n\n{more}"
