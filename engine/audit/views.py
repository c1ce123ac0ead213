"""``GET /api/audit``: the audit trail for admins and supervisors (read only).

There is no route that changes or deletes audit rows: other methods answer 405. Admins read
every row; a supervisor reads the rows the app's audit view allows
(``app.extensions["campo_audit_view"]``, set by ``engine.api.create_app``: the entity's
read permission, row scope and field rules, see ``engine.api.trail``); without one, only
admins read rows.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import marshmallow as ma
import sqlalchemy as sa
from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint

from engine.api.bounds import ID, PAGE, IntField

from .query import get_audit_row, query_audit
from .tables import audit_table

#: roles that may read the audit trail
READER_ROLES = ("admin", "supervisor")


class AuditRowSchema(ma.Schema):
    id = ma.fields.Integer()
    ts = ma.fields.AwareDateTime()
    action = ma.fields.String()
    user_id = ma.fields.Integer(allow_none=True)
    username = ma.fields.String(allow_none=True)
    source_ip = ma.fields.String(allow_none=True)
    request_id = ma.fields.String(allow_none=True)
    entity = ma.fields.String(allow_none=True)
    record_id = ma.fields.String(allow_none=True)
    before = ma.fields.Dict(allow_none=True)
    after = ma.fields.Dict(allow_none=True)
    detail = ma.fields.Dict(allow_none=True)


class UtcDateTime(ma.fields.AwareDateTime):
    """An ISO 8601 instant (UTC when it has no offset), converted to UTC; an instant that
    does not exist in UTC (``0001-01-01T00:00:00+05:00``) is a validation error."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(default_timezone=dt.UTC, **kw)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kw: Any) -> dt.datetime:
        when = super()._deserialize(value, attr, data, **kw)
        try:
            return when.astimezone(dt.UTC)
        except OverflowError:
            raise ma.ValidationError("out of range once converted to UTC") from None


class AuditQuerySchema(ma.Schema):
    user = ma.fields.String(metadata={"description": "user name"})
    user_id = IntField(*ID)
    entity = ma.fields.String(metadata={"description": "e.g. production.well, campo_user, tag"})
    record = ma.fields.String(metadata={"description": "record id (needs no entity)"})
    action = ma.fields.String(metadata={"description": "exact, or a family: login.*"})
    from_ = UtcDateTime(data_key="from", metadata={"description": "inclusive, ISO 8601 (UTC "
                                                                 "if no offset)"})
    to = UtcDateTime(metadata={"description": "exclusive, ISO 8601"})
    page = IntField(*PAGE, load_default=1)
    page_size = IntField(1, 1000, load_default=50)

    @ma.validates_schema
    def _order(self, data: dict[str, Any], **_kw: Any) -> None:
        if "from_" in data and "to" in data and data["from_"] >= data["to"]:
            raise ma.ValidationError("'from' must be before 'to'", field_name="from")


class AuditPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(AuditRowSchema))
    total = ma.fields.Integer()
    page = ma.fields.Integer()
    page_size = ma.fields.Integer()


def _audit_view() -> tuple[sa.ColumnElement[bool] | None, Any]:
    """The caller's rows (a WHERE clause, None: all) and the function shaping them."""
    from engine.auth.principal import current_principal

    view = current_app.extensions.get("campo_audit_view")
    if view is not None:
        return view.filter(audit_table), view.shape
    everything = "admin" in current_principal().roles
    return (None if everything else sa.false()), (lambda _rows: None)


def build_audit_blueprint() -> Blueprint:
    """A fresh ``audit`` blueprint (one per app)."""
    from engine.auth.access import require_roles
    from engine.auth.errors import fail
    from engine.auth.state import get_state

    blp = Blueprint("audit", __name__, url_prefix="/api/audit",
                    description="Audit trail, read only / Auditoría, solo lectura")

    @blp.route("")
    class AuditList(MethodView):
        @blp.arguments(AuditQuerySchema, location="query", unknown=ma.RAISE)
        @blp.response(200, AuditPageSchema)
        def get(self, args: dict[str, Any]) -> dict[str, Any]:
            """Audit rows, newest first, filtered by user, entity, record, action and time."""
            require_roles(*READER_ROLES)
            state = get_state()
            page, size = args["page"], min(args["page_size"], state.settings.max_page_size)
            visible, shape = _audit_view()
            with state.engine.connect() as conn:
                items, total = query_audit(
                    conn, user=args.get("user"), user_id=args.get("user_id"),
                    entity=args.get("entity"), record_id=args.get("record"),
                    action=args.get("action"), since=args.get("from_"), until=args.get("to"),
                    limit=size, offset=(page - 1) * size, visible=visible)
            shape(items)
            return {"items": items, "total": total, "page": page, "page_size": size}

    @blp.route("/<id(param='row_id'):row_id>")
    class AuditItem(MethodView):
        @blp.response(200, AuditRowSchema)
        def get(self, row_id: int) -> dict[str, Any]:
            """One audit row."""
            require_roles(*READER_ROLES)
            visible, shape = _audit_view()
            with get_state().engine.connect() as conn:
                row = get_audit_row(conn, row_id, visible)
            if row is None:
                fail(404, f"no audit row {row_id}")
            shape([row])
            return row

    return blp
