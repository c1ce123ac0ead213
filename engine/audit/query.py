"""Read the audit trail with filters, newest first."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from .tables import audit_table


def query_audit(conn: sa.Connection, *, user: str | None = None, user_id: int | None = None,
                entity: str | None = None, record_id: str | None = None,
                action: str | None = None, since: dt.datetime | None = None,
                until: dt.datetime | None = None, limit: int = 50,
                offset: int = 0, visible: sa.ColumnElement[bool] | None = None
                ) -> tuple[list[dict[str, Any]], int]:
    """Matching rows (newest first, at most ``limit``) and the total count.

    ``action`` ending in ``.*`` matches a family (``login.*``: ``login.failed``...);
    ``since`` is inclusive, ``until`` exclusive; ``visible`` limits the rows to the
    caller's (see ``engine.api.trail``).
    """
    a = audit_table
    cond: list[Any] = [] if visible is None else [visible]
    if user is not None:
        cond.append(a.c.username == user)
    if user_id is not None:
        cond.append(a.c.user_id == user_id)
    if entity is not None:
        cond.append(a.c.entity == entity)
    if record_id is not None:
        cond.append(a.c.record_id == record_id)
    if action is not None:
        if action.endswith(".*"):
            stem = action[:-2]
            cond.append(sa.or_(a.c.action == stem, a.c.action.startswith(stem + ".",
                                                                          autoescape=True)))
        else:
            cond.append(a.c.action == action)
    if since is not None:
        cond.append(a.c.ts >= since)
    if until is not None:
        cond.append(a.c.ts < until)
    total = conn.execute(sa.select(sa.func.count()).select_from(a).where(*cond)).scalar_one()
    rows = conn.execute(sa.select(a).where(*cond).order_by(a.c.ts.desc(), a.c.id.desc())
                        .limit(limit).offset(offset))
    return [dict(r._mapping) for r in rows], int(total)


def get_audit_row(conn: sa.Connection, row_id: int,
                  visible: sa.ColumnElement[bool] | None = None) -> dict[str, Any] | None:
    """One audit row by id (None when missing or not ``visible``)."""
    stmt = sa.select(audit_table).where(audit_table.c.id == row_id)
    if visible is not None:
        stmt = stmt.where(visible)
    row = conn.execute(stmt).first()
    return None if row is None else dict(row._mapping)
