"""REST API generated from the model: flask-smorest blueprints, OpenAPI, meta and health.

See ``engine/api/README.md`` for the package's rules and ``docs/api.md`` for the URLs.
"""

from __future__ import annotations

from .access import (
    Authorize,
    CurrentRoles,
    CurrentUser,
    RecordChange,
    RecordDenial,
    RowFilter,
    admin_roles,
    all_rows,
    allow_all,
    no_audit,
    no_denial,
    no_user,
)
from .app import InitHook, StartHook, api_context, create_app, shutdown

__all__ = ["Authorize", "CurrentRoles", "CurrentUser", "InitHook", "RecordChange",
           "RecordDenial", "RowFilter", "StartHook", "admin_roles", "all_rows", "allow_all",
           "api_context", "create_app", "no_audit", "no_denial", "no_user", "shutdown"]
