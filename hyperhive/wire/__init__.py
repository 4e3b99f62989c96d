"""Typed wire messages (pure types, no I/O): JSON lines over unix sockets.

`framing` reads and writes one JSON line (no pydantic: the harness uses it alone); `base`
holds the request/response base classes, the verb registries and the line parser; `agent` the
verbs every agent (and the manager) speaks on its own socket; `host` the host admin socket
(hyperhive v1); `lifecycle`, `approvals` and `followups` (questions, reminders, open threads,
status) the verbs of those features. Each module
adds its verbs to the registries in `base`, so the socket servers dispatch them without knowing
them.
"""
