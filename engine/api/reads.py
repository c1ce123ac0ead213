"""Read paths: one record, one page of a list, child rows and expanded links.

A page costs one query for its rows, one per requested child table and one per expanded
link (whatever the page size: ``IN`` over the page's ids), plus one for ``count``.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ClauseElement, Executable

from .query import ListQuery, encode_cursor, keyset_clause, order_by
from .resource import ChildTable, Resource

log = logging.getLogger(__name__)


class Explain(Executable, ClauseElement):
    """``EXPLAIN (FORMAT JSON) <select>`` on PostgreSQL, with the select's bound values."""

    inherit_cache = False

    def __init__(self, stmt: sa.Select[Any]) -> None:
        self.stmt = stmt


@compiles(Explain, "postgresql")
def _compile_explain(element: Explain, compiler: Any, **kw: Any) -> str:
    return "EXPLAIN (FORMAT JSON) " + str(compiler.process(element.stmt, **kw))


def child_rows(conn: Connection, child: ChildTable, parent_ids: list[int]
               ) -> dict[int, list[dict[str, Any]]]:
    """Rows of ``child`` for each parent id, in ``idx`` order (one query)."""
    dump = child.api.dumper(child.with_parent)
    out: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in conn.execute(child.select_rows, {"pids": parent_ids}):
        item = dump(row)
        out[item.pop("parent_id")].append(item)
    return out


def get_record(conn: Connection, res: Resource, record_id: int) -> dict[str, Any] | None:
    """One record with its child tables, or None."""
    row = conn.execute(res.api.select_by_id, {"record_id": record_id}).first()
    if row is None:
        return None
    item = res.api.dump_all(row)
    for name, child in res.children.items():
        item[name] = child_rows(conn, child, [record_id]).get(record_id, [])
    if res.behaviour is not None:
        res.behaviour.serve(conn, [row], res.api.names, [item])
    return item


def records_by_id(conn: Connection, res: Resource, ids: list[int]) -> dict[int, dict[str, Any]]:
    """Records (without child tables) by id, one query."""
    if not ids:
        return {}
    dump = res.api.dump_all
    return {row[0]: dump(row) for row in conn.execute(res.api.select_by_ids, {"ids": ids})}


def list_page(conn: Connection, res: Resource, q: ListQuery,
              resources: dict[str, Resource]) -> dict[str, Any]:
    """One page: ``{"items", "next_cursor", "count"}``."""
    names = q.fields or tuple(res.api.names)
    hidden = [n for n, _ in q.order if n not in names]
    select_names = names + tuple(hidden) if hidden else names
    stmt = (res.api.select_all if q.fields is None and not hidden
            else sa.select(*res.api.columns(select_names)))
    where = list(q.where)
    if q.after is not None:
        where.append(keyset_clause(res, q.order, q.after))
    if where:
        stmt = stmt.where(*where)
    stmt = stmt.order_by(*order_by(res, q.order)).limit(q.limit + 1)
    if q.offset:
        stmt = stmt.offset(q.offset)
    dump = res.api.dump_all if select_names is names and q.fields is None else \
        res.api.dumper(select_names)
    fetched = conn.execute(stmt).all()
    items = [dump(row) for row in fetched]
    next_cursor = None
    if len(items) > q.limit:
        del items[q.limit:]
        next_cursor = encode_cursor(res, q, items[-1])
    if res.behaviour is not None and q.fields is None:  # virtual fields: with all fields
        res.behaviour.serve(conn, fetched, select_names, items)
    if hidden:
        for item in items:
            for n in hidden:
                del item[n]
    if items and (q.tables or q.expand):
        ids = [item["id"] for item in items]
        for name in q.tables:
            rows = child_rows(conn, res.children[name], ids)
            for item in items:
                item[name] = rows.get(item["id"], [])
        for name in q.expand:
            _expand(conn, res, name, items, resources)
    count = None if q.count == "none" else count_rows(conn, res, q)
    if count is not None and q.count == "estimated":  # never fewer than the page shows
        count = max(count, q.offset + len(items) + (1 if next_cursor else 0))
    return {"items": items, "next_cursor": next_cursor, "count": count}


def _expand(conn: Connection, res: Resource, name: str, items: list[dict[str, Any]],
            resources: dict[str, Resource]) -> None:
    target = resources[res.links[name]]
    if name in items[0]:
        ids = sorted({item[name] for item in items if item[name] is not None})
        found = records_by_id(conn, target, ids)
        for item in items:
            value = item[name]
            item.setdefault("_expanded", {})[name] = None if value is None else found.get(value)
        return
    # the link column was not among fields=: read it alongside the ids
    t = res.table
    pairs = dict(conn.execute(sa.select(t.c.id, t.c[name]).where(
        t.c.id.in_([item["id"] for item in items]))).all())
    found = records_by_id(conn, target, sorted({v for v in pairs.values() if v is not None}))
    for item in items:
        value = pairs.get(item["id"])
        item.setdefault("_expanded", {})[name] = None if value is None else found.get(value)


def count_rows(conn: Connection, res: Resource, q: ListQuery) -> int:
    """Matching rows: exact, or estimated from planner statistics on PostgreSQL."""
    if q.count == "estimated" and conn.dialect.name == "postgresql":
        estimate = _pg_estimate(conn, res, q)
        if estimate is not None:
            return estimate
    # SQLite keeps no row statistics: its "estimated" count is the exact count.
    stmt = sa.select(sa.func.count()).select_from(res.table)
    if q.where:
        stmt = stmt.where(*q.where)
    return int(conn.execute(stmt).scalar_one())


def _pg_estimate(conn: Connection, res: Resource, q: ListQuery) -> int | None:
    """reltuples for the whole table; the planner's row estimate when filtered."""
    if not q.where:
        value = conn.execute(sa.text("SELECT reltuples FROM pg_class WHERE oid = "
                                     "to_regclass(:t)"), {"t": res.table.name}).scalar()
        if value is None or value < 0:  # never analysed: no statistics yet
            return None
        return int(value)
    plan: Any = conn.execute(Explain(sa.select(res.table.c.id).where(*q.where))).scalar()
    if isinstance(plan, str):
        plan = json.loads(plan)
    try:
        return int(plan[0]["Plan"]["Plan Rows"])
    except (KeyError, IndexError, TypeError):
        log.warning("unexpected EXPLAIN output for %s; counting exactly", res.table.name)
        return None
