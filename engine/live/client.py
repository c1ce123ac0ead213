"""One WebSocket of the live path: an ``asyncio.Protocol`` on the hub's loop.

It parses frames (wsproto), writes frames the hub built (shared by every socket that gets
the same payload), and handles back-pressure: while its send buffer is above
:data:`HIGH_WATER` it coalesces values (latest per tag) and keeps at most
:data:`EVENT_BACKLOG` event messages, and sends them when it drains. Policy (who, what,
when to drop) lives in :mod:`engine.live.hub`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from typing import Any

from wsproto.connection import Connection, ConnectionType
from wsproto.events import CloseConnection, Message, Ping, TextMessage
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from engine.bus import LiveValue

from . import websocket as wsx

#: send buffer above which a socket counts as slow (bytes), and where it resumes
HIGH_WATER = 256 * 1024
LOW_WATER = 64 * 1024
#: largest message a client may send (bytes)
MAX_MESSAGE = 64 * 1024
#: alarm batches kept for a socket that is not reading (events are not coalesced)
EVENT_BACKLOG = 1000


def dumps(obj: Any) -> bytes:
    """Compact JSON bytes."""
    return json.dumps(obj, default=str, separators=(",", ":")).encode()


class Client(asyncio.Protocol):
    """One WebSocket on the hub's loop."""

    def __init__(self, hub: Any, token: str | None, peer: str | None) -> None:
        self.hub = hub
        self.token = token
        self.peer = peer
        self.ws = Connection(ConnectionType.SERVER)
        self.transport: asyncio.Transport | None = None
        self.principal: Any = None
        self.expires = 0.0
        self.patterns: list[Any] = []
        self.pattern_texts: tuple[str, ...] = ()
        self.paths: frozenset[str] = frozenset()
        self.vis_key: Any = None
        self.group: Any = None  # the hub's Group of sockets with the same subscription
        self.paused_at: float | None = None
        self.backlog: dict[str, LiveValue] = {}
        self.closed = False
        self.checking = False
        #: a token the client sent while a check was running (taken up after it)
        self.pending_auth: str | None = None
        #: messages that arrived while the first credential check ran (handled after it)
        self.early: list[str] = []
        self.alarm_sub: Any = None
        #: watched entities -> ids of their records this socket was told of (record events)
        self.records: dict[str, set[int]] = {}
        self.event_backlog: list[bytes] = []
        self.delivered = 0
        self._text: list[str] = []
        self._size = 0

    # -- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.set_write_buffer_limits(high=HIGH_WATER, low=LOW_WATER)
        self.hub.attached(self)

    def data_received(self, data: bytes) -> None:
        try:
            self.ws.receive_data(data)
            for event in self.ws.events():
                if isinstance(event, TextMessage):
                    self._size += len(event.data)
                    if self._size > MAX_MESSAGE:
                        self.close(wsx.TOO_BIG, "message too big")
                        return
                    self._text.append(event.data)
                    if event.message_finished:
                        text, self._text, self._size = "".join(self._text), [], 0
                        self.hub.on_message(self, text)
                elif isinstance(event, Message):
                    self.error(400, "messages are JSON text")
                elif isinstance(event, Ping):
                    self._write(self.ws.send(event.response()))
                elif isinstance(event, CloseConnection):
                    if self.transport is not None and not self.closed:
                        self._write(wsx.close_frame(event.code, ""))
                    self._finish()
                    return
        except (RemoteProtocolError, LocalProtocolError) as err:
            self.close(1002, f"protocol error: {err}")

    def pause_writing(self) -> None:
        self.paused_at = time.monotonic()

    def resume_writing(self) -> None:
        self.paused_at = None
        events, self.event_backlog = self.event_backlog, []
        for data in events:
            self._write(data)
        if self.backlog and not self.closed:
            values = list(self.backlog.values())
            self.backlog = {}
            self.send_values(values)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.hub.detached(self)

    # -- sending
    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(data)

    def send(self, obj: Any) -> None:
        self._write(wsx.frame(dumps(obj)))

    def send_values(self, values: Sequence[LiveValue]) -> None:
        self.deliver(wsx.frame(dumps({"type": "values",
                                       "values": [v.to_json() for v in values]})), values)

    def deliver(self, data: bytes, values: Sequence[LiveValue]) -> None:
        """Write a values frame now, or coalesce it while the client is slow."""
        if self.closed:
            return
        if self.paused_at is not None:
            for v in values:
                self.backlog[v.tag] = v  # latest value wins
            return
        self.delivered += len(values)
        self._write(data)

    def send_event(self, obj: Any) -> None:
        """An event message: written now, or kept (bounded) while the client is slow."""
        data = wsx.frame(dumps(obj))
        if self.paused_at is None:
            self._write(data)
        elif len(self.event_backlog) < EVENT_BACKLOG:
            self.event_backlog.append(data)

    def error(self, code: int, message: str, **extra: Any) -> None:
        self.send({"type": "error", "code": code, "message": message, **extra})

    def close(self, code: int, reason: str, *, abort: bool = False) -> None:
        """Tell the client why (an error message and the close frame) and close."""
        if self.closed or self.transport is None:
            return
        if not abort:
            status = {wsx.SESSION_ENDED: 401, wsx.TOKEN_EXPIRED: 401, wsx.POLICY: 401,
                      wsx.TOO_MANY: 429, wsx.TRY_LATER: 503}.get(code)
            if status is not None:
                self.error(status, reason, close_code=code)
            self._write(wsx.close_frame(code, reason))
        self._finish(abort)

    def _finish(self, abort: bool = False) -> None:
        if self.closed or self.transport is None:
            return
        self.closed = True
        if abort:
            self.transport.abort()
        else:
            self.transport.close()
        self.hub.detached(self)
