"""A TCP relay on loopback to a real server, which a test takes down and brings back: a
tracking outage as the client sees it."""

from __future__ import annotations

import contextlib
import socket
import threading
from urllib.parse import urlsplit


class Relay:
    """A TCP relay on loopback to a real server that can go down: while down it drops every
    connection, open or new, as a tracking server that restarts does, and counts the
    connections it refused."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.target = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.down = False
        self.refused = 0
        self.open: set[socket.socket] = set()
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self.set_down(True)
        self.listener.close()

    def set_down(self, down: bool) -> None:
        self.down = down
        if down:
            with self.lock:
                for connection in self.open:
                    _hang_up(connection)
                self.open.clear()

    def _accept(self) -> None:
        while True:
            client, _ = self.listener.accept()
            if self.down:
                client.close()
                self.refused += 1
                continue
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.open |= {client, upstream}
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                _hang_up(end)


def _hang_up(connection: socket.socket) -> None:
    with contextlib.suppress(OSError):  # the other side hung up first
        connection.shutdown(socket.SHUT_RDWR)
