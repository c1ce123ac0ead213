"""Adapters for ``engine.api.create_app``: its ``authorize``, ``current_user`` and
``on_init`` hooks, backed by this package.

Example::

    from engine.api import create_app
    from engine.auth.hooks import auth_init_hook, authorize, current_username

    app = create_app(model, engine, settings, authorize=authorize,
                     current_user=current_username,
                     on_init=[auth_init_hook(engine, settings, model)])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask
from sqlalchemy.engine import Engine

from engine.settings import Settings
from metamodel import Entity, Model

from .access import record_denial
from .app import init_app
from .principal import optional_principal


def authorize(entity: Entity, action: str) -> bool:
    """Whether the caller's roles (with inherited ones) allow ``action`` on ``entity``.

    A refusal is written to the audit trail (``permission.denied``) before the view
    answers 403; a request without a principal (should not pass the guard) is refused.
    """
    p = optional_principal()
    if p is not None and entity.allows(p.roles, action):
        return True
    record_denial(entity=entity.qualname, action=action)
    return False


def current_username() -> str | None:
    """The caller's user name (for ``created_by``/``updated_by``), or ``None``."""
    p = optional_principal()
    return p.username if p is not None else None


def auth_init_hook(engine: Engine, settings: Settings, model: Model,
                   **options: Any) -> Callable[[Flask, Any], None]:
    """An ``on_init(app, api)`` hook that calls :func:`init_app` with ``options``."""

    def hook(app: Flask, api: Any) -> None:
        init_app(app, engine, settings, model, api=api, **options)

    return hook
