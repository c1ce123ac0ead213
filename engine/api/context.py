"""What every generated view needs: :class:`ApiContext`, built once by ``create_app``.

Its own module so that the views, the write path and the rules can all name it without
importing :mod:`engine.api.views` (which imports them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from engine.settings import Settings
from metamodel import Model

from .access import (
    Authorize,
    CurrentIdentity,
    CurrentRoles,
    CurrentUser,
    RecordChange,
    RecordDenial,
    RowFilter,
    admin_roles,
    all_rows,
    no_audit,
    no_denial,
    no_identity,
)
from .errors import ApiError
from .resource import Resource
from .writes import Referrer


@dataclass
class ApiContext:
    """What every generated view needs, built once by :func:`engine.api.create_app`."""

    model: Model
    engine: Engine
    settings: Settings
    resources: dict[str, Resource]
    authorize: Authorize
    current_user: CurrentUser
    #: qualified entity -> links that restrict deleting its records
    referrers: dict[str, list[Referrer]] = field(default_factory=dict)
    #: ``(entity, table) -> clause | None``: the caller's row-level scope (see .access)
    row_filter: RowFilter = all_rows
    #: ``(conn, *, action, entity, record_id, before, after)``: audit a write (see .access)
    record_change: RecordChange = no_audit
    #: ``() -> roles`` of the caller (workflow actions, ``user.roles`` in expressions)
    current_roles: CurrentRoles = admin_roles
    #: ``(entity, action, message, record_id=None)``: audit a 403 decided here (see .access)
    record_denial: RecordDenial = no_denial
    #: ``() -> {"id", "username", "roles", "sites"} | None``: ``user`` in expressions
    current_identity: CurrentIdentity = no_identity

    def scope(self, res: Resource) -> sa.ColumnElement[bool] | None:
        """The caller's row-level scope on ``res``'s table (None: every row)."""
        return self.row_filter(res.entity, res.table)

    def check(self, res: Resource, action: str) -> None:
        """403 unless the current user may ``action`` on the entity."""
        if not self.authorize(res.entity, action):
            raise ApiError(403, f"missing permission: {action} on {res.qualname}")
