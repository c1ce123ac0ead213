"""Record events: after a write commits, ``(entity, id, version, op)`` for whoever watches.

:func:`emit` is called by the write gate (:mod:`engine.api.gate`) inside the write's
transaction, once per write. An event leaves only if that transaction commits, and never
carries field values (who may see the record is decided by the receiver, per user).

The events wait on the connection; a rollback (or a rolled-back savepoint) drops them, and
when the connection goes back to the pool after a commit they leave:

- **PostgreSQL**: to this process's publisher thread, which sends them as ``NOTIFY`` on
  ``campo_records:<schema>`` (the channel of :func:`engine.db.atcommit.notify`), so every
  web process that ``LISTEN``\\ s (:mod:`engine.live.records`) hears them — this one
  included. One thread per process sends, in one statement, what arrived while it sent
  the last batch (each run of one entity and operation a payload, in order). A ``NOTIFY``
  inside the write's own transaction made PostgreSQL serialise the commits of concurrent
  writes (its notification queue lock is held through the commit's WAL flush: ~4 % of a
  generated create at 4 clients). The price: events of a process killed between a commit
  and its batch (a few milliseconds) are not sent; they only refresh open desks, which
  reload what they show when they reconnect.
- **Other databases** (SQLite: one web process): to this process's subscribers
  (:func:`subscribe_local`).

Example::

    stop = subscribe_local(engine, lambda events: print(events))
    with engine.begin() as conn:
        emit(conn, "wells.well", "update", [(7, 3)])
    # -> [RecordEvent(entity='wells.well', id=7, version=3, op='update')]
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from engine.db.atcommit import CHANNEL_SQL, TransactionList

log = logging.getLogger(__name__)

CHANNEL_PREFIX = "campo_records:"
#: PostgreSQL refuses payloads of 8000 bytes or more
MAX_PAYLOAD = 7000
_COMMITTED = "campo_records_done"
#: events of the transaction in progress on a connection (SQLite)
_pending = TransactionList("campo_records")

Callback = Callable[[list["RecordEvent"]], None]


@dataclass(frozen=True, slots=True)
class RecordEvent:
    """A committed change of one record: no field values, only which record and how."""

    entity: str
    id: int
    #: the version after the write (``None`` for a delete)
    version: int | None
    #: ``create``, ``update`` or ``delete``
    op: str

    def to_json(self) -> dict[str, Any]:
        return {"entity": self.entity, "id": self.id, "version": self.version, "op": self.op}


def encode(entity: str, op: str, changes: Sequence[tuple[int, int | None]]) -> list[str]:
    """NOTIFY payloads (each under :data:`MAX_PAYLOAD` bytes) for ``changes`` of one entity."""
    out: list[str] = []
    chunk: list[list[int | None]] = []
    size = len(entity) + 40
    for rid, version in changes:
        chunk.append([rid, version])
        size += 24
        if size > MAX_PAYLOAD:
            out.append(json.dumps({"e": entity, "op": op, "r": chunk}, separators=(",", ":")))
            chunk, size = [], len(entity) + 40
    if chunk:
        out.append(json.dumps({"e": entity, "op": op, "r": chunk}, separators=(",", ":")))
    return out


def decode(payload: str) -> list[RecordEvent]:
    """The events of one NOTIFY payload (empty when malformed)."""
    try:
        data = json.loads(payload)
        entity, op = str(data["e"]), str(data["op"])
        return [RecordEvent(entity, int(rid), None if v is None else int(v), op)
                for rid, v in data["r"]]
    except (ValueError, KeyError, TypeError) as exc:
        log.warning("record events: malformed payload %r: %s", payload[:200], exc)
        return []


def emit(conn: Connection, entity: str, op: str,
         changes: Iterable[tuple[int | None, int | None]]) -> None:
    """Announce ``changes`` (``(id, version)`` pairs) of ``entity`` when ``conn`` commits."""
    pairs = [(int(rid), version) for rid, version in changes if rid is not None]
    if not pairs:
        return
    _watch(conn.engine)
    _pending.extend(conn, (RecordEvent(entity, rid, version, op) for rid, version in pairs))


# --------------------------------------------------------------------------- in-process

_subscribers: weakref.WeakKeyDictionary[Engine, list[Callback]] = weakref.WeakKeyDictionary()
_watched: weakref.WeakSet[Engine] = weakref.WeakSet()
_lock = threading.Lock()


def subscribe_local(engine: Engine, callback: Callback) -> Callable[[], None]:
    """Call ``callback(events)`` after each commit on ``engine`` in this process (not on
    PostgreSQL, whose events come by ``LISTEN``); returns the function that stops it."""
    with _lock:
        _subscribers.setdefault(engine, []).append(callback)

    def stop() -> None:
        with _lock:
            subs = _subscribers.get(engine)
            if subs is not None and callback in subs:
                subs.remove(callback)
    return stop


def _watch(engine: Engine) -> None:
    with _lock:
        if engine in _watched:
            return
        _watched.add(engine)
    _pending.follow_savepoints(engine)
    sa.event.listen(engine, "commit", _on_commit)
    sa.event.listen(engine, "rollback", _pending.clear)
    sa.event.listen(engine, "checkin", lambda _dbapi, record: _deliver(engine, record.info))


def _on_commit(conn: Connection) -> None:
    pending = _pending.take(conn)
    if pending:
        conn.info.setdefault(_COMMITTED, []).extend(pending)


def _deliver(engine: Engine, info: dict[str, Any]) -> None:
    """Pool check-in: the connection's transactions are over; hand out what committed."""
    _pending.clear_info(info)
    events: list[RecordEvent] | None = info.pop(_COMMITTED, None)
    if not events:
        return
    if engine.dialect.name == "postgresql":
        _publisher(engine).send(events)
        return
    with _lock:
        subs = list(_subscribers.get(engine, ()))
    for fn in subs:
        try:
            fn(list(events))
        except Exception:  # a subscriber's problem is not the writer's
            log.exception("record event subscriber failed")


# --------------------------------------------------------------------------- PostgreSQL

#: events waiting for the publisher beyond this many are dropped, oldest first (a database
#: that stays unreachable must not grow the process)
MAX_QUEUED = 100_000
#: at most one batch per this many seconds; what arrives meanwhile goes in the next one
BATCH_PAUSE = 0.05
#: seconds without events after which the publisher gives its connection back to the pool
IDLE_CLOSE = 5.0
_publishers: dict[int, Publisher] = {}


def flush(engine: Engine, timeout: float = 5.0) -> bool:
    """Wait until the events this process committed on ``engine`` have been sent (at once
    on other databases, and when nothing was ever sent); False if ``timeout`` passed first.
    Called when the app stops, and by tests before they start to watch."""
    with _lock:
        pub = _publishers.get(id(engine))
    if pub is None or not pub.alive_for(engine):
        return True
    return pub.flush(timeout)


def _publisher(engine: Engine) -> Publisher:
    with _lock:
        pub = _publishers.get(id(engine))
        if pub is None or not pub.alive_for(engine):
            pub = _publishers[id(engine)] = Publisher(engine)
            for key in [k for k, v in _publishers.items() if v.gone()]:
                del _publishers[key]
        return pub


class Publisher:
    """One thread per process and engine sending committed events as ``NOTIFY`` batches
    (see the module doc); it ends once nothing else holds the engine."""

    def __init__(self, engine: Engine) -> None:
        self._engine = weakref.ref(engine)
        self.pid = os.getpid()
        self._events: list[RecordEvent] = []
        self._dropped = 0
        self._busy = False
        #: the publisher's own connection (autocommit, detached from the pool, which could be
        #: gone before it: a test's engine), kept between batches; closed after IDLE_CLOSE
        #: seconds without events, when the engine is disposed and when nothing holds it
        self._conn: Any = None
        self._release = False
        self._cond = threading.Condition()
        sa.event.listen(engine, "engine_disposed", self._on_dispose)
        self.thread = threading.Thread(target=self._run, daemon=True,
                                       name="campo-record-events")
        self.thread.start()

    def alive_for(self, engine: Engine) -> bool:
        """Still running for ``engine`` in this process (a forked child starts its own)."""
        return (self.pid == os.getpid() and self.thread.is_alive()
                and self._engine() is engine)

    def gone(self) -> bool:
        return self._engine() is None or not self.thread.is_alive()

    def send(self, events: list[RecordEvent]) -> None:
        with self._cond:
            self._events.extend(events)
            over = len(self._events) - MAX_QUEUED
            if over > 0:
                del self._events[:over]
                self._dropped += over
            self._cond.notify_all()

    def _on_dispose(self, _engine: Engine) -> None:
        with self._cond:
            self._release = True
            self._cond.notify_all()

    def flush(self, timeout: float) -> bool:
        """Wait until what was sent to the publisher has gone out (False on timeout)."""
        end = time.monotonic() + timeout
        with self._cond:
            while self._events or self._busy:
                left = end - time.monotonic()
                if left <= 0 or not self.thread.is_alive():
                    return False
                self._cond.wait(timeout=min(left, 0.1))
        return True

    def _run(self) -> None:
        last = -BATCH_PAUSE
        while True:
            with self._cond:
                self._busy = False
                self._cond.notify_all()
                if not self._events and not self._release:
                    self._cond.wait(timeout=IDLE_CLOSE)
                self._busy = bool(self._events)
            # the first events after a quiet moment leave at once; under a stream of writes
            # a batch every BATCH_PAUSE seconds, holding what arrived meanwhile
            gather = last + BATCH_PAUSE - time.monotonic()
            if self._busy and gather > 0:
                time.sleep(gather)
            with self._cond:
                batch, self._events = self._events, []
                dropped, self._dropped = self._dropped, 0
                disposed, self._release = self._release, False
            engine = self._engine()
            if engine is None:
                self._close()
                return
            if disposed or not batch:  # the engine disposed, or idle for IDLE_CLOSE seconds
                self._close()
            if dropped:
                log.warning("record events: %d not sent (the database was unreachable)",
                            dropped)
            if batch:
                self._publish(engine, batch)
                last = time.monotonic()
            del engine

    def _publish(self, engine: Engine, batch: list[RecordEvent]) -> None:
        """NOTIFY ``batch`` in one autocommit statement on the publisher's connection; on
        failure, once more on a new connection a second later (a restart of the database),
        then dropped with a warning."""
        payloads = list(batch_payloads(batch))
        sql = "SELECT " + ", ".join(
            f"pg_notify({CHANNEL_SQL}, %(p{i})s)" for i in range(len(payloads)))
        params = {"prefix": CHANNEL_PREFIX, **{f"p{i}": p for i, p in enumerate(payloads)}}
        for attempt in (1, 2):
            try:
                if self._conn is None:
                    fairy = engine.raw_connection()
                    driver = fairy.driver_connection  # (the fairy forgets it once detached)
                    fairy.detach()
                    self._conn = (fairy, driver)
                    driver.autocommit = True
                self._conn[1].execute(sql, params)
                return
            except Exception as exc:  # the writes committed; only the live refresh is late
                self._close()
                if attempt == 2:
                    log.warning("record events: %d not sent: %s", len(batch), exc)
                    return
                time.sleep(1.0)

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn[0].close()  # detached: closes the database connection
        except Exception as exc:  # a dead connection: nothing left to close
            log.debug("record events: closing the publisher's connection: %s", exc)


def batch_payloads(batch: Iterable[RecordEvent]) -> Iterable[str]:
    """The NOTIFY payloads of ``batch``: each run of one entity and operation together, in
    order (a record's create, updates and delete never change places)."""
    run: list[tuple[int, int | None]] = []
    key: tuple[str, str] | None = None
    for e in batch:
        if (e.entity, e.op) != key:
            if key is not None:
                yield from encode(key[0], key[1], run)
            key, run = (e.entity, e.op), []
        run.append((e.id, e.version))
    if key is not None:
        yield from encode(key[0], key[1], run)
