"""`PeerClient`: one node of a hive asking another (docs/multihost.md) over HTTP.

`call(node, url, body)` POSTs a host verb (the same JSON as the host socket) to the other
node's `POST /peer/rpc`, authenticated with the hive-wide secret as a bearer token, and
returns its answer; an answer in the one error shape is raised as its `HiveError`, an
unreachable node as `Unavailable` naming it. The node that answers runs the verb as its own
(it never forwards again: `X-Hive-Forwarded`).
"""

from __future__ import annotations

from typing import Any

import httpx

from hyperhive.errors import BadRequest, Unavailable, from_body

PEER_RPC_PATH = "/peer/rpc"
FORWARDED_HEADER = "x-hive-forwarded"


def auth_headers(secret: str, from_node: str) -> dict[str, str]:
    return {"authorization": f"Bearer {secret}", FORWARDED_HEADER: from_node}


class PeerClient:
    def __init__(self, secret: str, from_node: str, timeout: float = 60.0) -> None:
        self.secret = secret
        self.from_node = from_node
        self._http = httpx.AsyncClient(timeout=timeout, trust_env=False)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def call(self, node: str, url: str, body: dict[str, Any]) -> dict[str, Any]:
        if not url:
            raise Unavailable(f"node {node} has no peer address (is it running?)")
        try:
            resp = await self._http.post(
                url.rstrip("/") + PEER_RPC_PATH,
                json=body,
                headers=auth_headers(self.secret, self.from_node),
            )
        except httpx.HTTPError as exc:
            raise Unavailable(f"node {node} is unreachable at {url}: {exc!r}") from exc
        try:
            answer = resp.json()
        except ValueError as exc:
            raise Unavailable(f"node {node} answered HTTP {resp.status_code}, not JSON") from exc
        if not isinstance(answer, dict):
            raise BadRequest(f"node {node} answered {type(answer).__name__}, not an object")
        if answer.get("ok") is not True:
            raise from_body(answer)
        return answer
