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
import time
import weakref
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from .cache import ALL, invalidate_local, parse_payload

log = logging.getLogger(__name__)

CHANNEL_PREFIX = "campo_auth:"
_NOTIFY = sa.text(f"SELECT pg_notify('{CHANNEL_PREFIX}' || current_schema(), :payload)")


def send_notify(conn: sa.Connection, payload: str) -> None:
    """Queue a notice on ``conn``'s transaction (delivered at commit)."""
    conn.execute(_NOTIFY, {"payload": payload})


class InvalidationListener:
    """A daemon thread that applies other processes' invalidations to this one's caches."""

    def __init__(self, engine: Engine, poll: float = 1.0) -> None:
        #: weak: the listener ends (within ``poll``) once nothing else holds the engine
        self._engine = weakref.ref(engine)
        self.poll = poll
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name="campo-auth-listen")
        self._conn: Any = None

    def start(self) -> InvalidationListener:
        self._thread.start()
        return self

    def wait_ready(self, timeout: float = 5.0) -> bool:
        """Block until ``LISTEN`` is in place (tests; start-up does not wait)."""
        return self._ready.wait(timeout)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=self.poll + 2)

    def _gone(self) -> bool:
        return self._stop.is_set() or self._engine() is None

    def _connect(self) -> Any:
        engine = self._engine()
        if engine is None:
            raise LookupError("engine gone")
        raw = engine.raw_connection()
        del engine
        conn = raw.driver_connection
        raw.detach()  # ours for good: never returned to the pool
        conn.autocommit = True
        schema = conn.execute("SELECT current_schema()").fetchone()[0]
        conn.execute(f'LISTEN "{CHANNEL_PREFIX}{schema}"')
        return conn

    def _run(self) -> None:
        failures = 0
        while not self._gone():
            try:
                self._conn = self._connect()
                if failures:
                    log.warning("auth notifications: reconnected; caches cleared")
                    invalidate_local(ALL, None)
                failures = 0
                self._ready.set()
                while not self._gone():
                    for note in self._conn.notifies(timeout=self.poll, stop_after=64):
                        parsed = parse_payload(note.payload)
                        if parsed is not None:
                            invalidate_local(*parsed)
            except Exception as exc:  # the database went away: clear, wait, reconnect
                if self._gone():
                    break
                failures += 1
                invalidate_local(ALL, None)
                if failures == 1:
                    log.warning("auth notifications lost (%s); caches cleared, retrying",
                                str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
                time.sleep(min(5.0, 0.5 * failures))
            finally:
                if self._conn is not None:
                    try:
                        self._conn.close()
                    except Exception:  # closing a dead connection may fail; nothing to do
                        pass
                    self._conn = None


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
        if found is not None and found._thread.is_alive() and found._engine() is engine:
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
