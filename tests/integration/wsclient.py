"""A small blocking WebSocket client for tests (wsproto), with simple_websocket's surface.

Unlike simple_websocket's client it keeps frames that arrive in the same read as the
``101`` answer (the server may send ``ready`` at once), and it exposes the close code and
reason the server gave. (Holds no tests itself.)
"""

from __future__ import annotations

import base64
import os
import socket
import time
from urllib.parse import urlparse

from wsproto.connection import Connection, ConnectionType
from wsproto.events import CloseConnection, Ping, TextMessage


class ConnectionClosed(Exception):
    """The server closed the socket (``code``, ``reason``)."""

    def __init__(self, code: int | None, reason: str | None) -> None:
        super().__init__(f"closed: {code} {reason}")
        self.code = code
        self.reason = reason


class Client:
    """``Client.connect("ws://host:port/path?query")``; ``send``, ``receive``, ``close``."""

    def __init__(self, sock: socket.socket, leftover: bytes) -> None:
        self.sock = sock
        self.ws = Connection(ConnectionType.CLIENT)
        self.inbox: list[str] = []
        self.close_reason: int | None = None
        self.close_message: str | None = None
        self._parts: list[str] = []
        if leftover:
            self._feed(leftover)

    @classmethod
    def connect(cls, url: str, timeout: float = 10.0, rcvbuf: int | None = None) -> Client:
        u = urlparse(url)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(timeout)
        sock.connect((u.hostname or "127.0.0.1", u.port or 80))
        key = base64.b64encode(os.urandom(16)).decode()
        target = u.path + (f"?{u.query}" if u.query else "")
        sock.sendall((f"GET {target} HTTP/1.1\r\nHost: {u.netloc}\r\nUpgrade: websocket\r\n"
                      f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                      "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"no handshake answer: {data!r}")
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        status = head.split(b"\r\n", 1)[0]
        if b" 101 " not in status + b" ":
            sock.close()
            raise ConnectionError(status.decode(errors="replace"))
        return cls(sock, rest)

    def _feed(self, data: bytes) -> None:
        self.ws.receive_data(data if data else None)
        for event in self.ws.events():
            if isinstance(event, TextMessage):
                self._parts.append(event.data)
                if event.message_finished:
                    self.inbox.append("".join(self._parts))
                    self._parts = []
            elif isinstance(event, Ping):
                self.sock.sendall(self.ws.send(event.response()))
            elif isinstance(event, CloseConnection):
                self.close_reason, self.close_message = event.code, event.reason

    def receive(self, timeout: float | None = None) -> str | None:
        """The next text message, ``None`` after ``timeout``; ConnectionClosed when closed."""
        end = time.monotonic() + (timeout if timeout is not None else 3600)
        while not self.inbox:
            if self.close_reason is not None:
                raise ConnectionClosed(self.close_reason, self.close_message)
            left = end - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                return None
            except OSError:
                raise ConnectionClosed(self.close_reason, self.close_message) from None
            if not data:
                self.close_reason = self.close_reason or 1006
                raise ConnectionClosed(self.close_reason, self.close_message)
            self._feed(data)
        return self.inbox.pop(0)

    def send(self, text: str) -> None:
        self.sock.sendall(self.ws.send(TextMessage(data=text)))

    def close(self) -> None:
        try:
            if self.close_reason is None:
                self.sock.sendall(self.ws.send(CloseConnection(code=1000)))
        except Exception:  # closing an already dead socket
            pass
        finally:
            self.sock.close()
