"""A TCP proxy a test can cut and restore, to make a real broker unreachable for one client.

Three ways to hurt the clients behind it:
- `cut()`: every open connection is dropped and new ones are refused (closed at once) until `restore()`;
- `blackhole()`: connections stay open but no byte flows either way, and new connections are
  accepted but not forwarded, until `restore()`; what was sent meanwhile then arrives, as TCP
  delivers it once a partition heals;
- a `client_filter`: a factory of per-connection functions that see (and may rewrite) every
  byte a client sends upstream, e.g. `tests.support.amqp_divert`.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable

# One per connection: called with each chunk the client sent, returns what to send upstream.
StreamFilter = Callable[[bytes], bytes]


def _drop(sock: socket.socket) -> None:
    """Shut down, then close: the other direction's thread is blocked in recv on the socket, and a bare
    close would neither wake it nor send the FIN, so the far end would keep a dead peer's connection
    (and its consumers) until something else broke it."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


class TcpProxy:
    def __init__(
        self, target_host: str, target_port: int, *, client_filter: Callable[[], StreamFilter] | None = None
    ) -> None:
        self.target = (target_host, target_port)
        self.client_filter = client_filter
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(256)
        self.port = self.listener.getsockname()[1]
        self.up = threading.Event()
        self.up.set()
        # Cleared while black-holed: pipes hold what they read and read nothing more.
        self.flowing = threading.Event()
        self.flowing.set()
        self._open: set[socket.socket] = set()
        self._held: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up.is_set():
                client.close()
                continue
            if not self.flowing.is_set():
                with self._lock:
                    if not self.flowing.is_set():
                        # Accepted, never forwarded: the client waits on a connection that says nothing.
                        self._held.append(client)
                        continue
            threading.Thread(target=self._forward, args=(client,), daemon=True).start()

    def _forward(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        for s in (client, upstream):
            # Without it, Nagle's algorithm holds the small AMQP frames this proxy forwards piecemeal.
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            if not self.up.is_set():
                client.close()
                upstream.close()
                return
            self._open.update((client, upstream))
        transform = self.client_filter() if self.client_filter else None
        threading.Thread(target=self._pipe, args=(client, upstream, transform), daemon=True).start()
        threading.Thread(target=self._pipe, args=(upstream, client, None), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, transform: StreamFilter | None) -> None:
        try:
            while data := src.recv(65536):
                self.flowing.wait()
                if transform is not None:
                    data = transform(data)
                if data:
                    dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                _drop(s)
            with self._lock:
                self._open.discard(src)
                self._open.discard(dst)

    def cut(self) -> None:
        """Drop every open connection and refuse new ones until `restore()`."""
        self.up.clear()
        with self._lock:
            doomed = list(self._open) + self._held
            self._open.clear()
            self._held.clear()
        for s in doomed:
            _drop(s)
        # Pipes waiting on a black hole must see their closed sockets and end.
        self.flowing.set()

    def blackhole(self) -> None:
        """Keep every connection open but let no byte through, and forward no new connection, until `restore()`."""
        self.flowing.clear()

    def restore(self) -> None:
        with self._lock:
            held, self._held = self._held, []
            self.up.set()
            self.flowing.set()
        for client in held:
            threading.Thread(target=self._forward, args=(client,), daemon=True).start()

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._open) // 2

    def close(self) -> None:
        self.cut()
        self.listener.close()
