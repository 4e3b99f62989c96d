"""Typed wire messages (pure types, no I/O): JSON lines over unix sockets.

`base` holds the request/response base classes and the line parser; `agent` the verbs every
agent (and the manager) speaks on its own socket; `host` the host admin socket (hyperhive v1);
`events` the dashboard event envelope. Feature modules add their verbs to the registries in
`base` so the socket servers dispatch them without knowing them.
"""
