"""A TCP proxy between a store and the server: counts round trips, can cut a connection.

A round trip is counted each time the client sends after the server last spoke
(or first): a burst of client messages, then waiting for the reply. It sees
only bytes, so it measures what any driver does, pipelining included.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
from collections.abc import Callable
from typing import Literal

from psycopg.conninfo import conninfo_to_dict, make_conninfo

# What to do with a client burst: pass it on, pass it on then drop the
# connection before the reply, or drop the connection without passing it on.
Verdict = Literal["forward", "forward_then_cut", "cut"]
# A Sync message: it ends a pipeline and commits its implicit transaction.
SYNC = b"S\x00\x00\x00\x04"


def cut_at_commit(marker: bytes, *, landed: bool = True) -> Callable[[bytes], Verdict]:
    """A judge for the one-statement write whose bytes hold `marker`: everything
    before it passes; then, if `landed`, the write and the Sync that commits it
    pass and the connection drops before the reply, else it drops at once."""
    seen = False

    def judge(data: bytes) -> Verdict:
        # The client may send the Sync in a later packet than the statement.
        nonlocal seen
        seen = seen or marker in data
        if not seen:
            return "forward"
        if not landed:
            return "cut"
        return "forward_then_cut" if SYNC in data else "forward"

    return judge


def _upstream_address(dsn: str) -> tuple[int, str | tuple[str, int]]:
    params = conninfo_to_dict(dsn)
    host = str(params.get("host") or "/tmp").split(",")[0]
    port = int(str(params.get("port") or 5432).split(",")[0])
    if host.startswith("/"):
        return socket.AF_UNIX, f"{host}/.s.PGSQL.{port}"
    return socket.AF_INET, (host, port)


class Proxy:
    """Listens on 127.0.0.1; each accepted client gets its own upstream connection."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._family, self._address = _upstream_address(dsn)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.round_trips = 0
        self.judge: Callable[[bytes], Verdict] = lambda data: "forward"
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ, None)
        self._peers: dict[socket.socket, tuple[socket.socket, bool]] = {}
        self._client_spoke_last: dict[socket.socket, bool] = {}
        self._stopped = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="pg-proxy")
        self._thread.start()

    def conninfo(self, **extra: str) -> str:
        """The server's conninfo, pointed at this proxy."""
        return make_conninfo(
            self._dsn,
            host="127.0.0.1",
            port=str(self.port),
            sslmode="disable",
            gssencmode="disable",
            **extra,
        )

    def _accept(self) -> None:
        client, _ = self._listener.accept()
        upstream = socket.socket(self._family, socket.SOCK_STREAM)
        upstream.connect(self._address)
        self._peers[client] = (upstream, True)
        self._peers[upstream] = (client, False)
        self._client_spoke_last[client] = False
        for sock in (client, upstream):
            self._selector.register(sock, selectors.EVENT_READ, None)

    def _drop(self, sock: socket.socket) -> None:
        other, _ = self._peers.pop(sock, (None, False))
        for each in (sock, other):
            if each is None:
                continue
            self._peers.pop(each, None)
            self._client_spoke_last.pop(each, None)
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(each)
            each.close()

    def _relay(self, sock: socket.socket) -> None:
        other, from_client = self._peers[sock]
        try:
            data = sock.recv(65536)
        except OSError:
            data = b""
        if not data:
            self._drop(sock)
            return
        if from_client:
            verdict = self.judge(data)
            if not self._client_spoke_last.get(sock, False):
                with self._lock:
                    self.round_trips += 1
            self._client_spoke_last[sock] = True
            if verdict == "cut":
                self._drop(sock)
                return
            other.sendall(data)
            if verdict == "forward_then_cut":
                self._drop(sock)
            return
        self._client_spoke_last[other] = False
        other.sendall(data)

    def _loop(self) -> None:
        while not self._stopped:
            for key, _ in self._selector.select(timeout=0.1):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if sock is self._listener:
                    self._accept()
                elif sock in self._peers:
                    self._relay(sock)

    def close(self) -> None:
        self._stopped = True
        self._thread.join()
        for sock in list(self._peers):
            self._drop(sock)
        self._selector.close()
        self._listener.close()
