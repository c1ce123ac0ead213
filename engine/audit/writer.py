"""Write audit rows in the caller's transaction.

An audit row is inserted on the connection the change itself uses, so a rolled-back write
leaves no audit row and a committed one always has it. Who, source IP and request id come
from the Flask request context when there is one (the principal that ``engine.auth`` put
on ``flask.g``); outside a request (CLI, SCADA runtime) the caller names the actor.

Example::

    with engine.begin() as conn:
        old = conn.execute(select(t).where(t.c.id == 7)).one()._asdict()
        conn.execute(update(t).where(t.c.id == 7).values(status="producing"))
        record(conn, action="update", entity="production.well", record_id=7,
               before=old, after={**old, "status": "producing"})
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import enum
import functools
import json
import logging
import math
import uuid
from collections.abc import Collection, Mapping
from typing import Any

import sqlalchemy as sa
from flask import g, has_request_context, request

from engine.db import atcommit

from .tables import audit_table

log = logging.getLogger(__name__)

#: attribute of ``flask.g`` holding the authenticated principal (set by ``engine.auth``)
PRINCIPAL_KEY = "campo_principal"
#: attribute of ``flask.g`` holding the request id (set by :func:`install_request_id`)
REQUEST_ID_KEY = "campo_request_id"

#: system columns left out of diffs: the audit row itself says who and when
SYSTEM_FIELDS: frozenset[str] = frozenset(
    {"created_at", "created_by", "updated_at", "updated_by", "version"})


#: built once: a statement rebuilt per row cost a measurable share of every write
_INSERT = sa.insert(audit_table)
_JSON_COLUMNS = ("before", "after", "detail")
_COLUMNS = [c for c in audit_table.c if c.name != "id"]
_COLUMN_LIST = ", ".join(f'"{c.name}"' for c in _COLUMNS)
#: the same row as text for PostgreSQL, sent with the transaction's COMMIT
#: (:mod:`engine.db.atcommit`); JSON as the ``sa.JSON`` columns store it (None as ``null``)
_PG_INSERT = "INSERT INTO campo_audit ({}) VALUES ({})".format(
    _COLUMN_LIST, ", ".join(f"%({c.name})s::json" if c.name in _JSON_COLUMNS
                            else f"%({c.name})s" for c in _COLUMNS))


@functools.lru_cache(maxsize=8)
def _driver_insert(dialect: sa.Dialect) -> tuple[str, list[tuple[str, Any]]]:
    """The audit INSERT as the driver takes it (``?`` placeholders) and how each column's
    value is bound: the row written exactly as ``sa.insert(audit_table)`` writes it,
    without compiling and caching a statement per write (SQLite). JSON columns are
    ``json.dumps`` (what ``sa.JSON``'s processor calls: ``None`` is stored as ``null``)."""
    sql = "INSERT INTO campo_audit ({}) VALUES ({})".format(
        _COLUMN_LIST, ", ".join("?" for _ in _COLUMNS))
    return sql, [(c.name, json.dumps if c.name in _JSON_COLUMNS
                  else c.type.dialect_impl(dialect).bind_processor(dialect))
                 for c in _COLUMNS]


def _sqlite_insert(conn: sa.Connection, row: Mapping[str, Any]) -> int:
    """Insert ``row`` through the connection's sqlite3 cursor (its transaction; SQLAlchemy's
    statement machinery cost more than SQLite's insert, inside the write lock); a driver
    error reaches the caller as SQLAlchemy's ``DBAPIError``, as through ``execute``."""
    import sqlite3

    sql, binds = _driver_insert(conn.dialect)
    params = tuple(bind(row[name]) if bind is not None else row[name] for name, bind in binds)
    cursor = conn.connection.driver_connection.cursor()
    try:
        cursor.execute(sql, params)
        return int(cursor.lastrowid)  # type: ignore[arg-type]
    except sqlite3.Error as exc:
        raise sa.exc.DBAPIError.instance(sql, params, exc, sqlite3.Error,
                                         dialect=conn.dialect) from exc
    finally:
        cursor.close()


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


#: types :func:`jsonable` returns as they are (checked first: most values are one of them)
_AS_IS = frozenset({str, int, bool, type(None)})


def jsonable(value: Any) -> Any:
    """``value`` as JSON data: decimals as strings (exact), instants as ISO 8601."""
    if type(value) in _AS_IS or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)  # JSON has no NaN/Infinity
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    return str(value)


def diff(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None,
         ignore: Collection[str] = SYSTEM_FIELDS,
         ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The changed fields of a record: ``(before, after)`` restricted to what differs.

    A create has no ``before`` (every field given is in ``after``), a delete no ``after``.
    """
    if before is None and after is None:
        return None, None
    if before is None:
        assert after is not None
        return None, {k: jsonable(v) for k, v in after.items() if k not in ignore}
    if after is None:
        return {k: jsonable(v) for k, v in before.items() if k not in ignore}, None
    missing = object()
    changed = [k for k in dict.fromkeys([*before, *after])
               if k not in ignore and jsonable(before.get(k, missing))
               != jsonable(after.get(k, missing))]
    return ({k: jsonable(before[k]) for k in changed if k in before},
            {k: jsonable(after[k]) for k in changed if k in after})


def _clip(value: Any, size: int) -> str | None:
    return None if value is None else str(value)[:size]


def request_actor() -> tuple[int | None, str | None, str | None, str | None]:
    """``(user_id, username, source_ip, request_id)`` of the current request, or Nones."""
    if not has_request_context():
        return None, None, None, None
    principal = getattr(g, PRINCIPAL_KEY, None)
    # the engine acting in process (engine.auth's engine principal) is a name, not a user
    user_id = None if getattr(principal, "engine", False) else getattr(principal, "user_id",
                                                                        None)
    username = getattr(principal, "username", None)
    return user_id, username, request.remote_addr, getattr(g, REQUEST_ID_KEY, None)


def record(conn: sa.Connection, *, action: str, entity: str | None = None,
           record_id: Any = None, before: Mapping[str, Any] | None = None,
           after: Mapping[str, Any] | None = None, detail: Mapping[str, Any] | None = None,
           user_id: int | None = UNSET, username: str | None = UNSET,
           source_ip: str | None = UNSET, request_id: str | None = UNSET,
           ts: dt.datetime | None = None, ignore: Collection[str] = SYSTEM_FIELDS,
           changes_only: bool = True) -> int | None:
    """Insert one audit row on ``conn`` (the caller's transaction) and return its id.

    On PostgreSQL inside a transaction the row is sent with the ``COMMIT`` instead (one
    round trip less per write, :mod:`engine.db.atcommit`) and there is no id to return yet:
    ``None``. A rollback (or the rollback of the savepoint it was written in) drops it.

    ``before``/``after`` are whole records; only changed fields are kept unless
    ``changes_only`` is false. Who, IP and request id default to the current request's.
    """
    if not action or len(action) > 64:
        raise ValueError(f"audit action must be 1..64 characters, got {action!r}")
    r_user_id, r_username, r_ip, r_rid = request_actor()
    if changes_only:
        before_j, after_j = diff(before, after, ignore)
    else:
        before_j = None if before is None else jsonable(before)
        after_j = None if after is None else jsonable(after)
    row = {
        "ts": ts or dt.datetime.now(dt.UTC),
        "action": action,
        "user_id": r_user_id if user_id is UNSET else user_id,
        "username": _clip(r_username if username is UNSET else username, 150),
        "source_ip": _clip(r_ip if source_ip is UNSET else source_ip, 64),
        "request_id": _clip(r_rid if request_id is UNSET else request_id, 64),
        "entity": _clip(entity, 128),
        "record_id": _clip(record_id, 128),
        "before": before_j,
        "after": after_j,
        "detail": None if detail is None else jsonable(detail),
    }
    if atcommit.queues(conn):
        row["ts"] = audit_table.c.ts.type.process_bind_param(row["ts"], conn.dialect)
        for name in _JSON_COLUMNS:
            row[name] = json.dumps(row[name])
        atcommit.at_commit(conn, _PG_INSERT, row)
        log.debug("audit (at commit) %s %s:%s by %s", action, entity, record_id,
                  row["username"])
        return None
    if conn.dialect.name == "sqlite":
        new_id = _sqlite_insert(conn, row)
    else:
        result = conn.execute(_INSERT, row)
        new_id = int(result.inserted_primary_key[0])  # type: ignore[index]
    log.debug("audit %s %s %s:%s by %s", new_id, action, entity, record_id, row["username"])
    return new_id
