"""The audit trail: who changed what, when, from where — written in the changer's transaction.

Public API::

    from engine.audit import record, diff, install_request_id, current_request_id
    record(conn, action="update", entity="production.well", record_id=7,
           before=old_row, after=new_row)

Rows live in ``campo_audit`` (``engine.audit.tables``) and are immutable. ``GET /api/audit``
(``engine.audit.views``) is registered by ``engine.auth.init_app``.
"""

from __future__ import annotations

from .context import current_request_id, install_request_id
from .query import query_audit
from .tables import audit_table, platform_metadata
from .writer import SYSTEM_FIELDS, diff, jsonable, record

__all__ = [
    "SYSTEM_FIELDS", "audit_table", "current_request_id", "diff", "install_request_id",
    "jsonable", "platform_metadata", "query_audit", "record",
]
