"""Helpers the desk's views share: the API context, the caller, readable resources."""

from __future__ import annotations

from typing import Any

from flask import current_app

from engine.api import api_context, security
from engine.api.context import ApiContext
from engine.api.errors import ApiError
from engine.api.resource import Resource


def ctx() -> ApiContext:
    """The generated API's context of the current app."""
    out: ApiContext = api_context(current_app)
    return out


def identity(c: ApiContext) -> dict[str, Any]:
    """The caller (``id``, ``username``, ``roles``, ``sites``); 401 without one."""
    ident = c.current_identity()
    if not ident or ident.get("username") is None:
        raise ApiError(401, "authentication required")
    return ident


def readable(c: ApiContext, qualname: str, action: str = "read") -> Resource:
    """The resource ``module.entity`` if the caller may ``action`` it; else 404/403.

    An entity the caller may not read is a 404, as in ``/api/meta`` (its existence is not
    revealed); another missing action is a 403 through the API's own audited check.
    """
    res = c.resources.get(qualname)
    if res is None or "read" not in security.allowed_actions(c, res.entity):
        raise ApiError(404, f"unknown entity '{qualname}'")
    if action != "read":
        c.check(res, action)
    return res


def hidden_fields(c: ApiContext, res: Resource) -> frozenset[str]:
    """Fields of ``res`` the caller may not see."""
    return security.field_rules(c, res.entity).hidden
