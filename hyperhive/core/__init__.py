"""The hive core daemon: durable broker, agent registry, event hub, socket servers, lifecycle.

Where a message goes in: `servers` (unix sockets) → `rpc` (verb dispatch) → `broker.send` →
`store` (sqlite, one writer) → `broker` wakes the recipient's parked `recv` → reply on its socket.
"""
