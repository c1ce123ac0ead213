"""Who is asking and what they may do: the hooks authentication replaces.

Every generated view calls ``authorize(entity, action)`` before it touches the database
(``action`` is one of ``read``, ``create``, ``update``, ``delete``, ``export``) and records
``current_user()`` in ``created_by``/``updated_by``. Every read path (list, get, expanded
links, counts, aggregates, exports) and every link check of a write adds
``row_filter(entity, table)`` to its ``WHERE`` (the caller's row-level scope), and every write
calls ``record_change(conn, ...)`` in its own transaction (the audit trail). Without
authentication everyone may do everything, sees every row, the user is unknown (``None``) and
nothing is audited. :func:`engine.api.create_app` takes real functions
(``engine.auth.hooks``); the views do not change.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from metamodel import Entity

#: ``authorize(entity, action) -> bool``; False answers 403.
Authorize = Callable[[Entity, str], bool]
#: ``current_user() -> name or None``; called once per write, inside the request.
CurrentUser = Callable[[], str | None]
#: ``current_roles() -> effective roles`` (inherited ones included) of the caller; workflow
#: actions check them against a transition's ``roles`` and expressions read ``user.roles``.
CurrentRoles = Callable[[], frozenset[str]]
#: ``current_identity() -> {"id", "username", "roles", "sites"}`` of the caller, or None:
#: ``user`` in expressions the API evaluates (validations, computed values, guards).
CurrentIdentity = Callable[[], "dict[str, Any] | None"]
#: ``row_filter(entity, table) -> boolean clause over table, or None`` (no restriction).
#: Called inside the request; ``table`` is the entity's generated ``sa.Table``.
RowFilter = Callable[[Entity, sa.Table], "sa.ColumnElement[bool] | None"]


class RecordChange(Protocol):
    """``record_change(conn, *, action, entity, record_id, before, after)``: audit one change
    on ``conn`` (the write's own transaction, so a rollback leaves no row).

    ``action`` is ``create``, ``update``, ``delete`` or ``workflow.<action>``; ``entity`` the
    qualified name; ``before``/``after`` the whole record as served (``None`` for the side
    that does not exist); the hook keeps only the changed fields.
    """

    def __call__(self, conn: Connection, *, action: str, entity: str, record_id: Any,
                 before: Mapping[str, Any] | None,
                 after: Mapping[str, Any] | None) -> None: ...


class RecordDenial(Protocol):
    """``record_denial(entity, action, message, record_id=None)``: audit a refusal that the
    API answers with 403 (a read-only or out-of-scope write), in its own transaction.

    Called after the write's transaction was rolled back (``authorize`` audits the refusals
    it makes itself).
    """

    def __call__(self, entity: Entity, action: str, message: str,
                 record_id: Any = None) -> None: ...


def allow_all(entity: Entity, action: str) -> bool:
    """Allow every action (no authentication)."""
    return True


def no_user() -> str | None:
    """No user is known (no authentication)."""
    return None


def admin_roles() -> frozenset[str]:
    """The caller acts as admin (no authentication: everyone may do everything)."""
    return frozenset({"admin"})


def no_identity() -> dict[str, Any] | None:
    """No identity beyond ``current_user``/``current_roles`` (no authentication)."""
    return None


def all_rows(entity: Entity, table: sa.Table) -> sa.ColumnElement[bool] | None:
    """No row-level scope (no authentication): every row is visible."""
    return None


def no_denial(entity: Entity, action: str, message: str, record_id: Any = None) -> None:
    """Record nothing (no authentication)."""
    return None


def no_audit(conn: Connection, *, action: str, entity: str, record_id: Any,
             before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> None:
    """Record nothing (no authentication)."""
    return None
