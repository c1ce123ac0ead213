"""``GET /api/audit``: the audit trail for admins and supervisors (read only).

There is no route that changes or deletes audit rows: other methods answer 405.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import validate

from .query import get_audit_row, query_audit

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


class AuditQuerySchema(ma.Schema):
    user = ma.fields.String(metadata={"description": "user name"})
    user_id = ma.fields.Integer()
    entity = ma.fields.String(metadata={"description": "e.g. production.well, campo_user, tag"})
    record = ma.fields.String(metadata={"description": "record id (needs no entity)"})
    action = ma.fields.String(metadata={"description": "exact, or a family: login.*"})
    from_ = ma.fields.AwareDateTime(data_key="from", default_timezone=dt.UTC,
                                    metadata={"description": "inclusive, ISO 8601 (UTC if "
                                                             "no offset)"})
    to = ma.fields.AwareDateTime(default_timezone=dt.UTC,
                                 metadata={"description": "exclusive, ISO 8601"})
    page = ma.fields.Integer(load_default=1, validate=validate.Range(min=1))
    page_size = ma.fields.Integer(load_default=50, validate=validate.Range(min=1, max=1000))

    @ma.validates_schema
    def _order(self, data: dict[str, Any], **_kw: Any) -> None:
        if "from_" in data and "to" in data and data["from_"] >= data["to"]:
            raise ma.ValidationError("'from' must be before 'to'", field_name="from")


class AuditPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(AuditRowSchema))
    total = ma.fields.Integer()
    page = ma.fields.Integer()
    page_size = ma.fields.Integer()


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
            with state.engine.connect() as conn:
                items, total = query_audit(
                    conn, user=args.get("user"), user_id=args.get("user_id"),
                    entity=args.get("entity"), record_id=args.get("record"),
                    action=args.get("action"), since=args.get("from_"), until=args.get("to"),
                    limit=size, offset=(page - 1) * size)
            return {"items": items, "total": total, "page": page, "page_size": size}

    @blp.route("/<int:row_id>")
    class AuditItem(MethodView):
        @blp.response(200, AuditRowSchema)
        def get(self, row_id: int) -> dict[str, Any]:
            """One audit row."""
            require_roles(*READER_ROLES)
            with get_state().engine.connect() as conn:
                row = get_audit_row(conn, row_id)
            if row is None:
                fail(404, f"no audit row {row_id}")
            return row

    return blp
