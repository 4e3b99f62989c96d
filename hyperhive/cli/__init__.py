"""The `hive` command line: thin shims over the core's sockets (and `serve`, which runs it)."""
