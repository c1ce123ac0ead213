"""Record events: after a write commits, ``(entity, id, version, op)`` for whoever watches.

:func:`emit` is called by the write gate (:mod:`engine.api.gate`) inside the write's
transaction, once per write. An event leaves only if that transaction commits, and never
carries field values (who may see the record is decided by the receiver, per user):

- **PostgreSQL**: a ``NOTIFY`` on ``campo_records:<schema>`` sent with the transaction's
  ``COMMIT`` (:func:`engine.db.atcommit.notify`), so every web process that
  ``LISTEN``\\ s (:mod:`engine.live.records`) gets it at commit — this one included; a
  rolled-back transaction or savepoint sends nothing.
- **Other databases** (SQLite: one web process): the events wait on the connection and are
  handed to this process's subscribers (:func:`subscribe_local`) when the connection goes
  back to the pool after a commit; a rollback (or a rolled-back savepoint) drops them.

Example::

    stop = subscribe_local(engine, lambda events: print(events))
    with engine.begin() as conn:
        emit(conn, "wells.well", "update", [(7, 3)])
    # -> [RecordEvent(entity='wells.well', id=7, version=3, op='update')]
"""

from __future__ import annotations

import json
import logging
import threading
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from engine.db.atcommit import TransactionList, notify

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
    if conn.dialect.name == "postgresql":
        for payload in encode(entity, op, pairs):
            notify(conn, CHANNEL_PREFIX, payload)  # sent with the COMMIT
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
    with _lock:
        subs = list(_subscribers.get(engine, ()))
    for fn in subs:
        try:
            fn(list(events))
        except Exception:  # a subscriber's problem is not the writer's
            log.exception("record event subscriber failed")
