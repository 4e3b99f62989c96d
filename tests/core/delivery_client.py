"""A bare recv client for the kill -9 delivery tests, run as its own process (stdlib only, so
it starts fast): `python delivery_client.py SOCKET MODE SEED`.

It loops: recv (a random `max`), print `got <ids>` (flushed: the test's record of what this
client read), then handles it (prints `done <ids>`) and only then acknowledges it —
explicitly with `ack` or implicitly by its next recv, at random: the at-least-once client
pattern (handle, then ack; a kill in between costs a duplicate, never a loss). MODE `hold`: after the first non-empty batch it prints `holding` and blocks, having
read the reply but not acknowledged it (the test kills it there). The test SIGKILLs it.
"""

from __future__ import annotations

import json
import random
import socket
import sys


def main() -> None:
    path, mode, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
    rnd = random.Random(seed)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    f = s.makefile("rb")

    def ask(req: dict[str, object]) -> dict[str, object]:
        s.sendall(json.dumps(req).encode() + b"\n")
        line = f.readline()
        if not line:
            raise SystemExit("core closed the connection")
        answer = json.loads(line)
        assert isinstance(answer, dict) and answer.get("ok"), answer
        return answer

    while True:
        answer = ask({"cmd": "recv", "wait_seconds": 1, "max": rnd.randint(1, 8)})
        ids = [m["id"] for m in answer["messages"]]  # type: ignore[union-attr]
        if not ids:
            continue
        print("got", *ids, flush=True)
        if mode == "hold":
            print("holding", flush=True)
            sys.stdin.read()  # blocks until killed
            return
        print("done", *ids, flush=True)  # handled; acknowledged only now
        if rnd.random() < 0.5:
            ask({"cmd": "ack"})  # else the next recv acknowledges them


if __name__ == "__main__":
    main()
