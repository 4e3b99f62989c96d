"""Helpers the tests share (no test module imports another test module): a real daemon process,
waiting with a deadline, the browser settings, the real claude CLI against `hive sim`, git, MCP
and lifecycle fixtures' building blocks."""
