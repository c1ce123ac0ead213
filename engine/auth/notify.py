"""Credential invalidations across processes: PostgreSQL ``LISTEN``/``NOTIFY``.

:func:`send_notify` runs ``pg_notify`` on the connection that makes a change, so the
notice leaves only if the transaction commits. Each web process runs one
:class:`InvalidationListener`: a thread with its own connection (not from the pool) that
``LISTEN``\\ s and invalidates the process's caches. The channel carries the schema name, so
two deployments (or two tests) sharing a database do not disturb each other.

When the listener's connection drops it clears every cache (notices may have been missed)
and reconnects; meanwhile the cache's time bound still holds.
"""

from __future__ import annotations

import logging
import threading

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from engine.db.atcommit import notify
from engine.db.listen import Listener

from .cache import ALL, invalidate_local, parse_payload

log = logging.getLogger(__name__)

CHANNEL_PREFIX = "campo_auth:"


def send_notify(conn: sa.Connection, payload: str) -> None:
    """Queue a notice on ``conn``'s transaction (delivered at commit)."""
    notify(conn, CHANNEL_PREFIX, payload)


class InvalidationListener(Listener):
    """A daemon thread that applies other processes' invalidations to this one's caches;
    every cache is cleared when its connection drops and again when it listens again."""

    def __init__(self, engine: Engine, poll: float = 1.0) -> None:
        super().__init__(engine, CHANNEL_PREFIX, _apply, what="auth notifications",
                         on_lost=_clear_all, on_back=_clear_all, poll=poll)


def _apply(payload: str) -> None:
    parsed = parse_payload(payload)
    if parsed is not None:
        invalidate_local(*parsed)


def _clear_all() -> None:
    invalidate_local(ALL, None)


_listeners: dict[int, InvalidationListener] = {}
_lock = threading.Lock()


def listen(engine: Engine) -> InvalidationListener | None:
    """The engine's listener, started once per engine (PostgreSQL only; else ``None``).

    It stops when the engine is disposed.
    """
    if engine.dialect.name != "postgresql":
        return None
    key = id(engine)
    with _lock:
        found = _listeners.get(key)
        if found is not None and found.alive_for(engine):
            return found
        listener = InvalidationListener(engine).start()
        _listeners[key] = listener

    def _stop(_engine: Engine) -> None:
        with _lock:
            if _listeners.get(key) is listener:
                del _listeners[key]
        listener.stop()

    sa.event.listen(engine, "engine_disposed", _stop)

    return listener
