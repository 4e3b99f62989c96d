"""hyperhive: a hive of sandboxed Claude Code agents."""
