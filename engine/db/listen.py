"""A PostgreSQL ``LISTEN`` thread, shared by the features that hear other processes' writes
(credential invalidations, record events).

:class:`Listener` runs a daemon thread with its own connection (detached from the pool:
``LISTEN`` lives as long as the session) on the channel ``<prefix><current schema>``, so two
deployments or two tests sharing a database do not hear each other. Each payload goes to
``on_payload``. When the connection drops, ``on_lost`` runs (notices may have been missed)
and the thread reconnects with a growing pause (up to 5 s); ``on_back`` runs once it listens
again. It ends within ``poll`` seconds of :meth:`Listener.stop`, or once nothing else holds
the engine (a weak reference).
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, Self

from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)


class Listener:
    """``LISTEN`` on ``<prefix><schema>`` of a PostgreSQL ``engine`` (see the module doc)."""

    def __init__(self, engine: Engine, prefix: str, on_payload: Callable[[str], None], *,
                 what: str, on_lost: Callable[[], None] | None = None,
                 on_back: Callable[[], None] | None = None, poll: float = 1.0) -> None:
        self._engine = weakref.ref(engine)
        self.prefix = prefix
        self.on_payload = on_payload
        self.on_lost = on_lost
        self.on_back = on_back
        #: words of the log lines ("auth notifications", "record events")
        self.what = what
        self.poll = poll
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._conn: Any = None
        self.thread = threading.Thread(target=self._run, daemon=True,
                                       name=f"campo-listen-{prefix.rstrip(':')}")

    def start(self) -> Self:
        if not self.thread.is_alive():
            self.thread.start()
        return self

    def wait_ready(self, timeout: float = 5.0) -> bool:
        """Block until ``LISTEN`` is in place (tests; start-up does not wait)."""
        return self._ready.wait(timeout)

    def alive_for(self, engine: Engine) -> bool:
        """Whether this listener still runs for ``engine``."""
        return self.thread.is_alive() and self._engine() is engine

    def stop(self) -> None:
        self._stop.set()
        if self.thread.is_alive() and self.thread is not threading.current_thread():
            self.thread.join(timeout=self.poll + 2)

    def _gone(self) -> bool:
        return self._stop.is_set() or self._engine() is None

    def _connect(self) -> Any:
        engine = self._engine()
        if engine is None:
            raise LookupError("engine gone")
        raw = engine.raw_connection()
        del engine
        conn: Any = raw.driver_connection
        raw.detach()  # ours for good: never returned to the pool
        conn.autocommit = True
        schema = conn.execute("SELECT current_schema()").fetchone()[0]
        conn.execute(f'LISTEN "{self.prefix}{schema}"')
        return conn

    def _run(self) -> None:
        failures = 0
        while not self._gone():
            try:
                self._conn = self._connect()
                if failures:
                    log.warning("%s: listening again", self.what)
                    if self.on_back is not None:
                        self.on_back()
                failures = 0
                self._ready.set()
                while not self._gone():
                    for note in self._conn.notifies(timeout=self.poll, stop_after=64):
                        self.on_payload(note.payload)
            except Exception as exc:  # the database went away: wait, reconnect
                if self._gone():
                    break
                failures += 1
                if self.on_lost is not None:
                    self.on_lost()
                if failures == 1:
                    log.warning("%s lost (%s); retrying", self.what,
                                str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
                time.sleep(min(5.0, 0.5 * failures))
            finally:
                if self._conn is not None:
                    try:
                        self._conn.close()
                    except Exception:  # closing a dead connection may fail; nothing to do
                        pass
                    self._conn = None
