"""Clients of the core's sockets, used by every other part (harness, MCP server, CLI, web)."""

from hyperhive.client.agent import AgentClient, RetryPolicy, retry_note
from hyperhive.client.host import HostClient

__all__ = ["AgentClient", "HostClient", "RetryPolicy", "retry_note"]
