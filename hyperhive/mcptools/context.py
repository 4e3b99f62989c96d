"""`ToolContext`: what every tool module gets — the agent's identity, its applied config and a
socket client whose errors become MCP tool errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mcp.server.mcpserver.exceptions import ToolError

from hyperhive.agentconfig import AgentConfig
from hyperhive.client.agent import AgentClient, Answer, retry_note


@dataclass
class ToolContext:
    client: AgentClient
    name: str
    kind: str  # agent | manager
    manager: str
    config: AgentConfig = field(default_factory=AgentConfig)

    @property
    def is_manager(self) -> bool:
        return self.kind == "manager"

    async def call(self, cmd: str, **fields: Any) -> Answer:
        """One request on the agent's socket; `ok:false` raises `ToolError` with the reason."""
        try:
            answer = await self.client.request_answer(
                {"cmd": cmd, **{k: v for k, v in fields.items() if v is not None}}
            )
        except Exception as exc:
            raise ToolError(f"hyperhive: {exc}") from exc
        if not answer.body.get("ok"):
            raise ToolError(str(answer.body.get("error", "request failed")))
        return answer

    @staticmethod
    def text(message: str, answer: Answer) -> str:
        note = retry_note(answer)
        return f"{message}\n{note}" if note else message
