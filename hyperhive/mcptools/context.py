"""`ToolContext`: what every tool module gets — the agent's identity, its applied config and a
socket client whose errors become MCP tool errors.

Invariant: what the `recv` tool took is acknowledged right after the tool returns its result
(`ack_after_return`, a tracked task), so the MCP server never sits on a lease for the rest of a
turn, and never acknowledges before the result was handed to the MCP transport.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from mcp.server.mcpserver.exceptions import ToolError

from hyperhive.agentconfig import AgentConfig
from hyperhive.client.agent import AgentClient, Answer, retry_note

logger = logging.getLogger(__name__)


@dataclass
class ToolContext:
    client: AgentClient
    name: str
    kind: str  # agent | manager
    manager: str
    config: AgentConfig = field(default_factory=AgentConfig)
    trace_file: str | None = None  # the harness's running turn's traceparent (tracing on)
    _acks: set[asyncio.Task[None]] = field(default_factory=set, repr=False)

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

    def ack_after_return(self, ids: list[int]) -> None:
        """Acknowledge `ids` once the running tool has returned (its result goes out first:
        the task runs only after the tool's coroutine has given the loop back)."""
        task = asyncio.get_running_loop().create_task(self._ack(ids), name="mcp-recv-ack")
        self._acks.add(task)
        task.add_done_callback(self._acks.discard)

    async def _ack(self, ids: list[int]) -> None:
        await asyncio.sleep(0)  # one more loop pass: the tool result is on its way out
        try:
            await self.client.ack(ids)
        except Exception as exc:  # a duplicate later, never a loss
            logger.warning("could not acknowledge %s: %r", ids, exc, extra={"action": "ack_failed"})

    async def flush_acks(self) -> None:
        """Wait for scheduled acknowledgements (before the client closes)."""
        while self._acks:
            await asyncio.gather(*list(self._acks), return_exceptions=True)

    @staticmethod
    def text(message: str, answer: Answer) -> str:
        note = retry_note(answer)
        return f"{message}\n{note}" if note else message
