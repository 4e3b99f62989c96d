"""The agent harness: runs Claude Code turns for one agent and publishes what happens."""
