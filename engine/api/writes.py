"""Write paths: create, bulk create, replace/patch, delete, child tables, integrity errors.

Every write runs in one transaction (``engine.begin()``). Constraints are checked by the
database (foreign keys, unique, not null) so the happy path costs no extra queries; when a
statement fails, the transaction is rolled back and :func:`explain_integrity` asks the database
which link is missing or which value is taken, to answer 422/409 naming the field.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from engine.db.tables import INFO_KEY

from .codecs import default_value
from .errors import ApiError
from .reads import child_rows
from .resource import ChildTable, Resource

log = logging.getLogger(__name__)

#: rows with their input index: (index, values)
Rows = Sequence[Mapping[str, Any]]


def utcnow() -> dt.datetime:
    """The current instant, tz-aware UTC."""
    return dt.datetime.now(dt.UTC)


def _sql_nulls(values: dict[str, Any], json_fields: tuple[str, ...]) -> dict[str, Any]:
    # SQLAlchemy's JSON type stores None as the JSON text 'null'; __isnull filters need SQL NULL
    for name in json_fields:
        if name in values and values[name] is None:
            values[name] = sa.null()
    return values


def record_values(res: Resource, data: Mapping[str, Any], *, partial: bool) -> dict[str, Any]:
    """Column values of one record from validated input (left-out fields take defaults)."""
    if partial:
        values = {n: data[n] for n in res.stored if n in data}
    else:
        values = {}
        for name in res.stored:
            if name in data:
                values[name] = data[name]
            else:
                values[name] = default_value(res.entity.fields[name], res.tz)
    return _sql_nulls(values, res.api.json_fields) if res.api.json_fields else values


def _row_values(child: ChildTable, row: Mapping[str, Any], idx: int) -> dict[str, Any]:
    values: dict[str, Any] = {"idx": idx}
    for name, f in child.api.entity.stored_fields().items():
        values[name] = row[name] if name in row else default_value(f, child.tz)
    return _sql_nulls(values, child.api.json_fields) if child.api.json_fields else values


def insert_records(conn: Connection, res: Resource, items: Sequence[Mapping[str, Any]],
                   user: str | None, *, bulk: bool = False) -> list[dict[str, Any]]:
    """Insert validated records (with their child rows); return them as served.

    The model's rules (``res.behaviour``, :mod:`engine.api.prepare`) run first: defaults,
    computed and fetched values, checks (422), naming series.
    """
    if res.behaviour is not None:
        items = res.behaviour.before_insert(conn, items, bulk=bulk)
    now = utcnow()
    stamp = {"created_at": now, "updated_at": now, "created_by": user, "updated_by": user,
             "version": 1}
    rows = [{**record_values(res, data, partial=False), **stamp} for data in items]
    if len(rows) == 1:
        result = [conn.execute(res.api.insert_one, rows[0]).one()]
    else:
        result = list(conn.execute(res.api.insert_many, rows).all())
    out = [res.api.dump_all(row) for row in result]
    for name, child in res.children.items():
        pending = []
        for record, data in zip(out, items, strict=True):
            for idx, row in enumerate(data.get(name) or ()):
                pending.append({**_row_values(child, row, idx), **stamp,
                                "parent_id": record["id"]})
            record[name] = []
        if pending:
            _insert_child_rows(conn, child, pending, out)
    if res.behaviour is not None:
        res.behaviour.serve(conn, result, res.api.names, out)
    return out


def _insert_child_rows(conn: Connection, child: ChildTable, rows: list[dict[str, Any]],
                       records: list[dict[str, Any]]) -> None:
    dump = child.api.dumper(child.with_parent)
    by_id = {r["id"]: r for r in records}
    for row in conn.execute(child.insert_rows, rows).all():
        item = dump(row)
        by_id[item.pop("parent_id")][child.field].append(item)


def update_record(conn: Connection, res: Resource, record_id: int, data: Mapping[str, Any],
                  *, partial: bool, user: str | None, rules: bool = True) -> dict[str, Any]:
    """Replace (PUT) or patch one record and its child tables; 404/409 when it cannot.

    The model's rules run first unless ``rules`` is false (a caller that already ran them,
    like a workflow action).
    """
    if rules and res.behaviour is not None:
        data = res.behaviour.before_update(conn, record_id, data, partial=partial)
    t = res.table
    now = utcnow()
    values = record_values(res, data, partial=partial)
    values.update(updated_at=now, updated_by=user, version=t.c.version + 1)
    stmt = sa.update(t).where(t.c.id == record_id)
    expected = data.get("version")
    if expected is not None:
        stmt = stmt.where(t.c.version == expected)
    row = conn.execute(stmt.values(values).returning(*res.api.columns(res.api.names))).first()
    if row is None:
        raise missing_or_stale(conn, res, record_id, expected)
    item = res.api.dump_all(row)
    for name, child in res.children.items():
        if name in data or not partial:
            sync_child_rows(conn, child, record_id, data.get(name) or [], now, user)
        item[name] = child_rows(conn, child, [record_id]).get(record_id, [])
    if res.behaviour is not None:
        res.behaviour.serve(conn, [row], res.api.names, [item])
    return item


def sync_child_rows(conn: Connection, child: ChildTable, parent_id: int, rows: Rows,
                    now: dt.datetime, user: str | None) -> None:
    """Make the parent's rows exactly ``rows``: rows with a known ``id`` are updated in
    place, others inserted, the rest deleted; ``idx`` follows the list order."""
    t = child.api.table
    existing = set(conn.execute(sa.select(t.c.id).where(t.c.parent_id == parent_id)).scalars())
    keep: list[dict[str, Any]] = []
    new: list[dict[str, Any]] = []
    for idx, row in enumerate(rows):
        values = _row_values(child, row, idx)
        row_id = row.get("id")
        if row_id in existing:
            existing.discard(row_id)
            keep.append({"_id": row_id, **{f"v_{k}": v for k, v in values.items()}})
        else:
            new.append({**values, "parent_id": parent_id, "created_at": now, "updated_at": now,
                        "created_by": user, "updated_by": user, "version": 1})
    if existing:
        conn.execute(sa.delete(t).where(t.c.id.in_(sorted(existing))))
    if keep:
        names = [n[2:] for n in keep[0] if n != "_id"]
        stmt = (sa.update(t).where(t.c.id == sa.bindparam("_id"))
                .values({**{n: sa.bindparam(f"v_{n}") for n in names}, "updated_at": now,
                         "updated_by": user, "version": t.c.version + 1}))
        conn.execute(stmt, keep)
    if new:
        conn.execute(t.insert(), new)


def delete_record(conn: Connection, res: Resource, record_id: int, expected: int | None) -> None:
    """Delete one record (children and cascading links follow in the database)."""
    t = res.table
    stmt = sa.delete(t).where(t.c.id == record_id)
    if expected is not None:
        stmt = stmt.where(t.c.version == expected)
    if conn.execute(stmt).rowcount == 0:
        raise missing_or_stale(conn, res, record_id, expected)


def missing_or_stale(conn: Connection, res: Resource, record_id: int,
                     expected: int | None) -> ApiError:
    """404 when the record does not exist, else 409 for a stale version."""
    t = res.table
    current = conn.execute(sa.select(t.c.version).where(t.c.id == record_id)).scalar()
    if current is None:
        return ApiError(404, f"{res.qualname} {record_id} not found")
    return ApiError(409, f"{res.qualname} {record_id} was changed by someone else: its "
                    f"version is {current}, the request sent {expected}; read it again",
                    {"json": {"version": [f"stale version {expected}; current is {current}"]}})


# --------------------------------------------------------------------------- integrity errors


def explain_integrity(engine: Engine, res: Resource, err: sa.exc.IntegrityError,
                      items: Sequence[Mapping[str, Any]], *, bulk: bool) -> ApiError:
    """Turn a failed write into 422 (missing link, null) or 409 (taken value) naming fields."""
    with engine.connect() as conn:
        missing = missing_links(conn, res, items)
    if missing:
        errors = {i: fields for i, fields in missing.items()} if bulk else missing[0]
        names = sorted({f.split(".")[0] for fields in missing.values() for f in fields})
        return ApiError(422, "link to a missing record: " + ", ".join(names),
                        {"json": errors})
    text = str(err.orig)
    diag = getattr(err.orig, "diag", None)
    table = getattr(diag, "table_name", None)
    columns = _unique_columns(text)
    if columns is not None:
        table = table or columns[0]
        ent = res.table.metadata.tables[table].info.get(INFO_KEY) \
            if table in res.table.metadata.tables else None
        where = ent.qualname if ent is not None else table
        cols = columns[1]
        errors_for = {c: [f"value already exists in {where}"] for c in cols}
        rows = None
        if bulk:
            rows = _rows_with(items, cols)
            if table == res.table.name:
                with engine.connect() as conn:
                    rows = sorted(set(rows) | set(_rows_taken(conn, res, items, cols)))
        body: dict[Any, Any] = ({i: errors_for for i in rows} if rows else errors_for)
        return ApiError(409, f"{', '.join(cols)}: a record with this value already exists "
                        f"in {where}", {"json": body})
    null_col = getattr(diag, "column_name", None) or _match(r"NOT NULL constraint failed: "
                                                           r"\w+\.(\w+)", text)
    if null_col:
        return ApiError(422, f"{null_col} is required", {"json": {null_col: ["required"]}})
    log.warning("unexplained integrity error on %s: %s", res.qualname, text)
    return ApiError(409, "the change conflicts with other records: " + text.splitlines()[0])


def _match(pattern: str, text: str) -> str | None:
    m = re.search(pattern, text)
    return m.group(1) if m else None


def _unique_columns(text: str) -> tuple[str, list[str]] | None:
    """(table, columns) of a unique violation message from SQLite or PostgreSQL."""
    m = re.search(r"UNIQUE constraint failed: (.+)", text)
    if m:
        parts = [p.strip() for p in m.group(1).splitlines()[0].split(",")]
        return parts[0].split(".")[0], [p.split(".")[-1] for p in parts]
    m = re.search(r'unique constraint "(\w+)"', text)
    if m:
        cols = re.search(r"Key \(([^)]*)\)=", text)
        names = [c.strip().strip('"') for c in cols.group(1).split(",")] if cols else [m.group(1)]
        return "", names
    return None


def _keys(items: Sequence[Mapping[str, Any]], cols: list[str]
          ) -> dict[tuple[Any, ...], list[int]]:
    """Input row indexes by their values of ``cols`` (rows with a null among them never
    conflict and are left out)."""
    seen: dict[tuple[Any, ...], list[int]] = defaultdict(list)
    for i, data in enumerate(items):
        key = tuple(data.get(c) for c in cols)
        if None not in key:
            seen[key].append(i)
    return seen


def _rows_with(items: Sequence[Mapping[str, Any]], cols: list[str]) -> list[int]:
    """Indexes of input rows sharing a value of ``cols`` with another row (a duplicate)."""
    return sorted(i for idxs in _keys(items, cols).values() if len(idxs) > 1 for i in idxs)


def _rows_taken(conn: Connection, res: Resource, items: Sequence[Mapping[str, Any]],
                cols: list[str]) -> list[int]:
    """Indexes of input rows whose values of ``cols`` an existing record already has."""
    if any(c not in res.table.c for c in cols):
        return []
    keys = _keys(items, cols)
    if not keys:
        return []
    columns = [res.table.c[c] for c in cols]
    target = columns[0] if len(cols) == 1 else sa.tuple_(*columns)
    values = [k[0] for k in keys] if len(cols) == 1 else list(keys)
    found = conn.execute(sa.select(*columns).where(target.in_(values))).all()
    return sorted(i for row in found for i in keys.get(tuple(row), []))


def missing_links(conn: Connection, res: Resource, items: Sequence[Mapping[str, Any]]
                  ) -> dict[int, dict[str, list[str]]]:
    """Per input index, the link fields (``field`` or ``table.row.field``) naming a missing
    record. One query per link field, whatever the number of rows."""
    wanted: dict[str, set[int]] = defaultdict(set)
    uses: list[tuple[int, str, str, int]] = []  # (index, error key, target, id)
    for i, data in enumerate(items):
        for name, target in res.links.items():
            value = data.get(name)
            if value is not None:
                wanted[target].add(value)
                uses.append((i, name, target, value))
        for tname, child in res.children.items():
            cent = child.api.entity
            for r, row in enumerate(data.get(tname) or ()):
                for fname, target in cent.targets.items():
                    value = row.get(fname)
                    if value is not None:
                        wanted[target].add(value)
                        uses.append((i, f"{tname}.{r}.{fname}", target, value))
    found: dict[str, set[int]] = {}
    for target, ids in wanted.items():
        table = res.table.metadata.tables[target.replace(".", "_", 1)]
        found[target] = set(conn.execute(
            sa.select(table.c.id).where(table.c.id.in_(sorted(ids)))).scalars())
    out: dict[int, dict[str, list[str]]] = defaultdict(dict)
    for i, key, target, value in uses:
        if value not in found[target]:
            out[i][key] = [f"{target} {value} does not exist"]
    return dict(out)


#: a link that blocks deletes: (referencing table, link column, entity served, id column)
Referrer = tuple[sa.Table, str, str, str]


def restricting_references(conn: Connection, record_id: int, referrers: Sequence[Referrer],
                           limit: int = 20) -> dict[str, list[int]]:
    """Ids of records whose ``on_delete: restrict`` links point at ``record_id`` (for a child
    row, the id of its parent record)."""
    out: dict[str, list[int]] = {}
    for table, column, qualname, id_col in referrers:
        ids = list(conn.execute(sa.select(table.c[id_col]).where(table.c[column] == record_id)
                                .distinct().order_by(table.c[id_col]).limit(limit)).scalars())
        if ids:
            out.setdefault(qualname, []).extend(ids)
    return out
