"""A network namespace joined to the host by a veth pair, and a TCP relay, for tests that put
a node of a hive on "another host": its traffic to the database and to the other nodes
crosses a real network interface.

`Veth()` (a context manager; needs root and `ip`): namespace `hhn-<id>`, host end
`hhv<id>` with `host_ip`, namespace end with `ns_ip` (a /30), both up, plus `lo` in the
namespace (a node's own loopback services). `exec_prefix` runs a command inside it. Teardown
deletes the namespace (which deletes the pair); nothing else on the host is touched.

`TcpRelay(listen_host, target_port)`: accepts on `listen_host:<free port>` and pipes each
connection to `127.0.0.1:target_port` (the test cluster listens on loopback only), in a thread
of its own so blocking test code (starting a daemon) never stalls it.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import subprocess
import threading
from types import TracebackType


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


class Veth:
    def __init__(self) -> None:
        tag = secrets.token_hex(3)
        self.ns = f"hhn-{tag}"
        self.host_if = f"hhv{tag}"
        self.ns_if = f"hhp{tag}"
        third = int(tag[:2], 16)
        fourth = (int(tag[2:4], 16) % 63) * 4
        self.host_ip = f"10.231.{third}.{fourth + 1}"
        self.ns_ip = f"10.231.{third}.{fourth + 2}"

    @property
    def exec_prefix(self) -> tuple[str, ...]:
        return ("ip", "netns", "exec", self.ns)

    def __enter__(self) -> Veth:
        _ip("netns", "add", self.ns)
        try:
            _ip("link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if)
            _ip("link", "set", self.ns_if, "netns", self.ns)
            _ip("addr", "add", f"{self.host_ip}/30", "dev", self.host_if)
            _ip("link", "set", self.host_if, "up")
            _ip("-n", self.ns, "addr", "add", f"{self.ns_ip}/30", "dev", self.ns_if)
            _ip("-n", self.ns, "link", "set", self.ns_if, "up")
            _ip("-n", self.ns, "link", "set", "lo", "up")
        except BaseException:
            self.close()
            raise
        return self

    def host_rx_bytes(self) -> int:
        """Bytes the host end received (sent from inside the namespace)."""
        with open(f"/sys/class/net/{self.host_if}/statistics/rx_bytes", encoding="ascii") as f:
            return int(f.read())

    def close(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            _ip("link", "del", self.host_if)
        with contextlib.suppress(subprocess.CalledProcessError):
            _ip("netns", "del", self.ns)

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class TcpRelay:
    def __init__(self, listen_host: str, target_port: int) -> None:
        self.target_port = target_port
        self.sock = socket.create_server((listen_host, 0))
        self.port = int(self.sock.getsockname()[1])
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, name="tcp-relay", daemon=True)

    def __enter__(self) -> TcpRelay:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        # shutdown() wakes the accept() blocked on the socket; close() alone would not
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self._thread.join(10)
        with self._lock:
            for c in self._conns:
                with contextlib.suppress(OSError):
                    c.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=10)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pipe, args=(src, dst), daemon=True).start()


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)
