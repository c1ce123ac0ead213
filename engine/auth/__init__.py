"""Identity, sessions and the API gateway: who is calling, and may they.

Public API (see README.md)::

    from engine.auth import init_app, current_principal, require_roles, deny
    init_app(app, engine, settings, model, api=api)
    p = current_principal()          # in a view: Principal(user_id, username, roles, sites...)

Tables are created by :func:`ensure_platform_tables` (``campo_*``, own MetaData).
"""

from __future__ import annotations

from .access import deny, record_denial, require_roles, roles_required
from .app import bootstrap_admin, init_app
from .config import AuthConfigError, resolve_jwt_secret
from .hooks import (
    api_hooks,
    auth_init_hook,
    authorize,
    current_roles,
    current_username,
    record_change,
    row_filter,
)
from .principal import ALL_SITES, Principal, current_principal, optional_principal
from .state import AuthState, get_state
from .tables import ensure_platform_tables, platform_metadata
from .tokens import decode_bearer

__all__ = [
    "ALL_SITES", "AuthConfigError", "AuthState", "Principal", "api_hooks", "auth_init_hook",
    "authorize", "current_roles", "record_change", "row_filter",
    "bootstrap_admin", "current_principal", "current_username", "decode_bearer", "deny",
    "ensure_platform_tables", "get_state", "init_app", "optional_principal",
    "platform_metadata", "record_denial", "require_roles", "resolve_jwt_secret",
    "roles_required",
]
