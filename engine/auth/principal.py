"""The authenticated caller of a request, as views and permission hooks see it."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from flask import g, has_request_context

from engine.audit.writer import PRINCIPAL_KEY
from metamodel import Model

from .errors import fail
from .tables import user_role_table, user_site_table

ALL_SITES = "*"
#: WSGI environ key of an in-process caller (the engine writing through its own API, e.g.
#: the historian's ERP rollups). A client cannot set it: HTTP headers reach the environ as
#: ``HTTP_*`` keys only, so only code in this process (a Flask test client's
#: ``environ_base``) can put a principal here.
ENGINE_ENVIRON = "campo.engine_principal"


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user signed in with a token, or a service account with an API key."""

    user_id: int
    username: str
    #: effective roles: the assigned ones plus everything they inherit (``model.role_closure``)
    roles: frozenset[str]
    #: the roles assigned to the user, before inheritance
    assigned_roles: frozenset[str]
    #: site codes the user may see; ``*`` means every site
    sites: frozenset[str]
    is_service: bool = False
    #: the server-side session of a token login (``None`` for API keys)
    session_id: str | None = None
    #: the API key used (``None`` for token logins)
    api_key_id: int | None = None
    #: the engine itself acting in process (:func:`engine_principal`): every permission,
    #: every site, no rate limit, ``user_id`` not recorded in the audit trail
    engine: bool = False

    @property
    def is_admin(self) -> bool:
        """Whether the caller holds (or inherits) the admin role."""
        return "admin" in self.roles

    @property
    def all_sites(self) -> bool:
        """Whether no site restriction applies (``*`` assigned, or admin)."""
        return ALL_SITES in self.sites or self.is_admin

    def has_role(self, *roles: str) -> bool:
        """Whether the caller holds (or inherits) any of ``roles``."""
        return not self.roles.isdisjoint(roles)

    def may_see_site(self, site: str | None) -> bool:
        """Whether a record of ``site`` is visible to the caller (``None``: not site-bound)."""
        return site is None or self.all_sites or site in self.sites

    def permissions(self, model: Model) -> dict[str, list[str]]:
        """Allowed actions per entity (qualified name), for entities with at least one."""
        out: dict[str, list[str]] = {}
        for qualname, ent in sorted(model.entities.items()):
            actions = sorted(set().union(*(ent.permissions.get(r, ()) for r in self.roles)))
            if actions:
                out[qualname] = actions
        return out


def engine_principal(username: str) -> Principal:
    """The engine writing through its own API as ``username`` (``created_by``, the audit),
    passed in :data:`ENGINE_ENVIRON` by an in-process client only."""
    admin = frozenset({"admin"})
    return Principal(0, username, admin, admin, frozenset({ALL_SITES}), is_service=True,
                     engine=True)


def load_principal(conn: sa.Connection, model: Model, *, user_id: int, username: str,
                   is_service: bool, session_id: str | None = None,
                   api_key_id: int | None = None) -> Principal:
    """Read a user's roles and sites (one query) and expand roles through inheritance."""
    rows = conn.execute(sa.union_all(
        sa.select(sa.literal("r").label("kind"), user_role_table.c.role.label("value"))
        .where(user_role_table.c.user_id == user_id),
        sa.select(sa.literal("s").label("kind"), user_site_table.c.site.label("value"))
        .where(user_site_table.c.user_id == user_id))).all()
    assigned = frozenset(v for k, v in rows if k == "r")
    sites = frozenset(v for k, v in rows if k == "s")
    effective: frozenset[str] = frozenset().union(*(model.role_closure(r) for r in assigned))
    return Principal(user_id, username, effective, assigned, sites, is_service,
                     session_id, api_key_id)


def optional_principal() -> Principal | None:
    """The caller of the current request, or ``None`` (public endpoint, no request)."""
    if not has_request_context():
        return None
    p = getattr(g, PRINCIPAL_KEY, None)
    return p if isinstance(p, Principal) else None


def current_principal() -> Principal:
    """The caller of the current request; 401 if the request is not authenticated."""
    p = optional_principal()
    if p is None:
        fail(401, "authentication required",
              headers={"WWW-Authenticate": 'Bearer realm="campo"'})
    return p
