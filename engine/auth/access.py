"""Role checks for views, and recorded permission denials."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any, NoReturn, TypeVar

from flask import request

from engine.audit import record

from .errors import fail
from .principal import Principal, current_principal
from .state import get_state

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


def record_denial(*, entity: str | None = None, record_id: Any = None,
                  action: str | None = None, reason: str | None = None) -> None:
    """Write a ``permission.denied`` audit row for the current request (own transaction).

    ``reason`` (the 403's message) goes into ``detail``. Call it before opening the
    request's write transaction, or after it ended: on SQLite a second writer would wait
    for the first.
    """
    state = get_state()
    detail: dict[str, Any] = {"action": action, "method": request.method, "path": request.path}
    if reason is not None:
        detail["reason"] = reason
    with state.engine.begin() as conn:
        record(conn, action="permission.denied", entity=entity, record_id=record_id,
               detail=detail, ts=state.now())
    log.info("permission denied: %s %s (%s on %s)", request.method, request.path, action,
             entity)


def deny(message: str = "permission denied", *, entity: str | None = None,
         record_id: Any = None, action: str | None = None) -> NoReturn:
    """Record a ``permission.denied`` audit row (see :func:`record_denial`); abort with 403."""
    record_denial(entity=entity, record_id=record_id, action=action)
    fail(403, message)


def require_roles(*roles: str) -> Principal:
    """The current principal if it holds any of ``roles`` (inherited count); else 403."""
    p = current_principal()
    if not p.has_role(*roles):
        deny(f"requires role {' or '.join(roles)}", action=request.endpoint)
    return p


def roles_required(*roles: str) -> Callable[[F], F]:
    """Decorator form of :func:`require_roles` for view functions and methods."""

    def decorate(fn: F) -> F:
        @wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            require_roles(*roles)
            return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
