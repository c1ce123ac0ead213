"""Adapters for ``engine.api.create_app``: its access hooks, backed by this package.

``authorize`` (roles vs entity permissions, refusals audited), ``current_username``
(created_by/updated_by), ``current_roles`` (field rules, workflow roles), ``row_filter``
(the entity's ``scope:`` for the caller, see :mod:`engine.rules.scopes`), ``record_change``
(an audit row in the write's transaction) and ``record_denial`` (an audited 403 the API
decided itself). :func:`api_hooks` returns them all as keyword arguments.

Example::

    from engine.api import create_app
    from engine.auth.hooks import api_hooks, auth_init_hook

    app = create_app(model, engine, settings, **api_hooks(),
                     on_init=[auth_init_hook(engine, settings, model)])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.engine import Connection, Engine

from engine.audit import record
from engine.rules import scopes_for
from engine.rules.scopes import Caller
from engine.settings import Settings
from metamodel import Entity, Model

from .access import record_denial as _record_denial
from .app import init_app
from .principal import Principal, optional_principal
from .state import get_state


def authorize(entity: Entity, action: str) -> bool:
    """Whether the caller's roles (with inherited ones) allow ``action`` on ``entity``.

    The engine acting in process (``Principal.engine``) may do everything. A refusal is
    written to the audit trail (``permission.denied``) before the view
    answers 403; a request without a principal (should not pass the guard) is refused.
    """
    p = optional_principal()
    if p is not None and (p.engine or entity.allows(p.roles, action)):
        return True
    _record_denial(entity=entity.qualname, action=action,
                   reason=f"missing permission: {action} on {entity.qualname}")
    return False


def current_username() -> str | None:
    """The caller's user name (for ``created_by``/``updated_by``), or ``None``."""
    p = optional_principal()
    return p.username if p is not None else None


def current_roles() -> frozenset[str]:
    """The caller's effective roles (inherited included); none without a principal."""
    p = optional_principal()
    return p.roles if p is not None else frozenset()


def row_filter(entity: Entity, table: sa.Table) -> sa.ColumnElement[bool] | None:
    """The caller's row-level scope of ``entity`` over ``table`` (None: every row).

    Admins see every row; an entity without ``scope:`` has no restriction; a request
    without a principal sees nothing.
    """
    p = optional_principal()
    if p is None:
        return sa.false()
    return principal_row_filter(p, entity, table, get_state().model)


def principal_row_filter(p: Principal, entity: Entity, table: sa.Table,
                         model: Model) -> sa.ColumnElement[bool] | None:
    """``p``'s row-level scope of ``entity`` (what :func:`row_filter` gives the caller; the
    live record events of ``/api/ws`` filter with it too)."""
    if p.is_admin:
        return None
    scope = scopes_for(model).get(entity.qualname)
    if scope is None:
        return None
    return scope.clause(table, Caller(p.user_id, p.username, p.roles, p.sites))


def record_change(conn: Connection, *, action: str, entity: str, record_id: Any,
                  before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> None:
    """One audit row on ``conn`` (the write's transaction): who, when, the changed fields."""
    record(conn, action=action, entity=entity, record_id=record_id, before=before,
           after=after, ts=get_state().now())


def record_denial(entity: Entity, action: str, message: str, record_id: Any = None) -> None:
    """An audited refusal (``permission.denied``, own transaction) the API answers 403."""
    _record_denial(entity=entity.qualname, record_id=record_id, action=action, reason=message)


def current_identity() -> dict[str, Any] | None:
    """The caller as ``user`` in expressions: id, name, effective roles and sites."""
    p = optional_principal()
    if p is None:
        return None
    return {"id": p.user_id, "username": p.username, "roles": sorted(p.roles),
            "sites": sorted(p.sites)}


def api_hooks() -> dict[str, Any]:
    """Every access hook of :func:`engine.api.create_app`, as keyword arguments."""
    return {"authorize": authorize, "current_user": current_username,
            "current_roles": current_roles, "row_filter": row_filter,
            "record_change": record_change, "record_denial": record_denial,
            "current_identity": current_identity}


def auth_init_hook(engine: Engine, settings: Settings, model: Model,
                   **options: Any) -> Callable[[Flask, Any], None]:
    """An ``on_init(app, api)`` hook that calls :func:`init_app` with ``options``."""

    def hook(app: Flask, api: Any) -> None:
        init_app(app, engine, settings, model, api=api, **options)

    return hook
