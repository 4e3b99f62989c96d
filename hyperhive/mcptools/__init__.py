"""The hyperhive MCP server: the tools an agent's model sees (`mcp__hyperhive__*`).

Runs as a stdio MCP server (official `mcp` SDK) started by Claude Code; every tool is a thin
call on the agent's own socket. Tool results are plain text the model can read; failures are
MCP tool errors with the core's message; a slow round trip appends the retry note.
"""
