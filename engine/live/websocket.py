"""WebSocket plumbing for the event-loop live path: the handshake, socket take-over, frames.

A WebSocket request reaches the WSGI server like any other. :func:`take_over` answers the
handshake itself (``101 Switching Protocols``) and takes the connection out of the server:
it keeps a duplicate of the socket's file descriptor and points the server's descriptor at
a closed dummy socket, so whatever the server does next (write its response, close,
drain) touches the dummy and the real connection is left to the event loop. The WSGI
thread returns at once: a socket no longer holds a thread. It works with any WSGI server
that exposes the raw socket (gunicorn's ``gunicorn.socket``, werkzeug's
``werkzeug.socket``).

Outgoing frames are built here (server frames are not masked, so one frame can go to
every client that gets the same payload); incoming frames are parsed by ``wsproto``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import struct
from collections.abc import Mapping
from typing import Any

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

#: close codes (RFC 6455 and the 4000-4999 private range, documented in docs/live.md)
NORMAL = 1000
GOING_AWAY = 1001
POLICY = 1008
TOO_BIG = 1009
TRY_LATER = 1013
SESSION_ENDED = 4001
TOKEN_EXPIRED = 4002
TOO_SLOW = 4008
TOO_MANY = 4029


class HandshakeError(Exception):
    """Not a WebSocket request this server can take (``status`` to answer)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def accept_key(key: str) -> str:
    """``Sec-WebSocket-Accept`` for a client's ``Sec-WebSocket-Key``."""
    return base64.b64encode(hashlib.sha1(key.encode("ascii") + GUID).digest()).decode()


def check_handshake(environ: Mapping[str, Any]) -> tuple[str, socket.socket]:
    """The client's key and the raw socket of a WebSocket upgrade request; else raise."""
    if environ.get("REQUEST_METHOD") != "GET":
        raise HandshakeError(405, "a WebSocket handshake is a GET")
    if "websocket" not in environ.get("HTTP_UPGRADE", "").lower():
        raise HandshakeError(426, "this endpoint speaks WebSocket only (Upgrade: websocket)")
    if environ.get("HTTP_SEC_WEBSOCKET_VERSION") != "13":
        raise HandshakeError(426, "WebSocket version 13 is required")
    key = environ.get("HTTP_SEC_WEBSOCKET_KEY", "")
    try:
        if len(base64.b64decode(key, validate=True)) != 16:
            raise ValueError(key)
    except ValueError:
        raise HandshakeError(400, "bad Sec-WebSocket-Key") from None
    sock = environ.get("gunicorn.socket") or environ.get("werkzeug.socket")
    if not isinstance(sock, socket.socket):
        raise HandshakeError(501, "this WSGI server does not hand over its sockets; "
                                  "serve with 'campo serve'")
    return key, sock


def take_over(sock: socket.socket, key: str) -> socket.socket:
    """Answer the handshake on ``sock`` and return the connection as a new socket object.

    The server's own ``sock`` is left pointing at a closed dummy socket.
    """
    sock.setblocking(True)
    sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                 b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
                 + accept_key(key).encode() + b"\r\n\r\n")
    mine = os.dup(sock.fileno())
    dummy, peer = socket.socketpair()
    try:
        os.dup2(dummy.fileno(), sock.fileno())
    finally:
        dummy.close()
        peer.close()
    conn = socket.socket(fileno=mine)
    conn.setblocking(False)
    return conn


def frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """One final, unmasked server frame (text by default)."""
    n = len(payload)
    if n < 126:
        return bytes((0x80 | opcode, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", 0x80 | opcode, 126, n) + payload
    return struct.pack("!BBQ", 0x80 | opcode, 127, n) + payload


def close_frame(code: int, reason: str) -> bytes:
    """A close frame with ``code`` and ``reason`` (cut to the 123 bytes a frame allows)."""
    data = reason.encode()[:123]
    return frame(struct.pack("!H", code) + data, 0x8)
