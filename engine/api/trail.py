"""Which audit rows a caller may read, and what of them: the entity endpoints' own rules.

``GET /api/audit`` (:mod:`engine.audit.views`) asks the app for an :class:`AuditView`
(``app.extensions["campo_audit_view"]``, set by :func:`engine.api.create_app`):

- admins read every row;
- anyone else reads only rows about records of entities their roles may **read**
  (:func:`engine.api.security.allowed_actions`, as ``/api/meta`` decides), and only while
  the record is inside their **row scope** (``ctx.scope``, the clause every list and get
  adds): a row about a record outside it — or about a deleted record of a scoped entity,
  whose scope can no longer be judged — is not shown;
- fields **hidden** from them (:func:`engine.api.security.strip`, as records are served)
  are removed from ``before``/``after`` snapshots;
- rows that describe no model entity (logins, sessions, users, API keys, tag writes,
  denials of non-entity routes) are for admins only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from . import security

if TYPE_CHECKING:
    from .context import ApiContext


class AuditView:
    """The caller's view of the audit trail, built on the generated API's context."""

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    def sees_all(self) -> bool:
        """Whether the caller reads every row (admins)."""
        return "admin" in self.ctx.current_roles()

    def filter(self, audit: sa.Table) -> sa.ColumnElement[bool] | None:
        """A ``WHERE`` clause on ``audit`` for the caller's rows; None: every row."""
        if self.sees_all():
            return None
        ctx = self.ctx
        parts: list[sa.ColumnElement[bool]] = []
        for qualname, res in ctx.resources.items():
            if "read" not in security.allowed_actions(ctx, res.entity):
                continue
            cond: sa.ColumnElement[bool] = audit.c.entity == qualname
            clause = ctx.scope(res)
            if clause is not None:
                t = res.table
                inside = sa.select(sa.cast(t.c.id, audit.c.record_id.type)).where(clause)
                cond = sa.and_(cond, audit.c.record_id.in_(inside.scalar_subquery()))
            parts.append(cond)
        return sa.or_(*parts) if parts else sa.false()

    def shape(self, rows: Sequence[dict[str, Any]]) -> None:
        """Remove fields hidden from the caller from the rows' snapshots (in place)."""
        if self.sees_all():
            return
        ctx = self.ctx
        for row in rows:
            res = ctx.resources.get(row.get("entity") or "")
            if res is None:
                continue
            snaps = [s for s in (row.get("before"), row.get("after")) if isinstance(s, dict)]
            security.strip(ctx, res, snaps)
