"""Users, their roles and sites: the store behind the admin API and ``campo user``.

Every function works on a caller's connection so the change and its audit row share one
transaction. Role names are checked against the model (built-in and YAML roles).
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from metamodel import Model

from .cache import USER, announce
from .tables import api_key_table, session_table, user_role_table, user_site_table, user_table

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,149}$")
SITE_RE = re.compile(r"^(\*|[A-Za-z0-9][A-Za-z0-9._-]{0,99})$")
#: fields of a user shown by the API and kept in audit diffs (never the hash)
PUBLIC_FIELDS = ("id", "username", "display_name", "email", "is_service", "disabled",
                 "created_at", "updated_at", "password_changed_at", "last_login_at")


class IdentityError(ValueError):
    """Bad input about a user; ``field`` names the offending field (for a 4xx reply)."""

    def __init__(self, field: str, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.field = field
        self.status = status


def normalize_username(name: str) -> str:
    """The stored form of a user name (trimmed, lower case)."""
    return name.strip().lower()


def check_username(name: str) -> str:
    """The normalized name, or :class:`IdentityError` if it is not a valid user name."""
    norm = normalize_username(name)
    if not USERNAME_RE.match(norm):
        raise IdentityError("username", f"invalid user name {name!r}: use 1-150 of a-z 0-9 . _ @ -"
                            ", starting with a letter or digit")
    return norm


def check_roles(model: Model, roles: Iterable[str]) -> list[str]:
    """Sorted distinct roles, or :class:`IdentityError` naming the first unknown one."""
    out = sorted(set(roles))
    for r in out:
        if r not in model.roles:
            close = difflib.get_close_matches(r, list(model.roles), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise IdentityError("roles", f"unknown role {r!r}{hint}; known roles: "
                                + ", ".join(sorted(model.roles)))
    return out


def check_sites(sites: Iterable[str]) -> list[str]:
    """Sorted distinct site codes (``*`` = every site), or :class:`IdentityError`."""
    out = sorted(set(sites))
    for s in out:
        if not SITE_RE.match(s):
            raise IdentityError("sites", f"invalid site code {s!r}")
    return out


def admin_roles(model: Model) -> frozenset[str]:
    """Roles that grant ``admin`` (itself and any role inheriting it)."""
    return frozenset(r for r in model.roles if "admin" in model.role_closure(r))


def find_user(conn: sa.Connection, username: str) -> sa.Row[Any] | None:
    """The user row named ``username`` (case-insensitive), with its password hash."""
    return conn.execute(sa.select(user_table).where(
        user_table.c.username == normalize_username(username))).first()


def user_roles(conn: sa.Connection, user_id: int) -> list[str]:
    """The roles assigned to a user (not expanded)."""
    return sorted(conn.execute(sa.select(user_role_table.c.role)
                               .where(user_role_table.c.user_id == user_id)).scalars())


def user_sites(conn: sa.Connection, user_id: int) -> list[str]:
    """The site codes assigned to a user."""
    return sorted(conn.execute(sa.select(user_site_table.c.site)
                               .where(user_site_table.c.user_id == user_id)).scalars())


def get_user(conn: sa.Connection, user_id: int) -> dict[str, Any] | None:
    """A user's public fields plus ``roles`` and ``sites``, or ``None``."""
    row = conn.execute(sa.select(*(user_table.c[f] for f in PUBLIC_FIELDS))
                       .where(user_table.c.id == user_id)).first()
    if row is None:
        return None
    out = dict(row._mapping)
    out["roles"] = user_roles(conn, user_id)
    out["sites"] = user_sites(conn, user_id)
    return out


def list_users(conn: sa.Connection) -> list[dict[str, Any]]:
    """Every user with roles and sites, by user name."""
    rows = conn.execute(sa.select(*(user_table.c[f] for f in PUBLIC_FIELDS))
                        .order_by(user_table.c.username)).all()
    roles: dict[int, list[str]] = {}
    for uid, role in conn.execute(sa.select(user_role_table.c.user_id, user_role_table.c.role)
                                  .order_by(user_role_table.c.role)):
        roles.setdefault(uid, []).append(role)
    sites: dict[int, list[str]] = {}
    for uid, site in conn.execute(sa.select(user_site_table.c.user_id, user_site_table.c.site)
                                  .order_by(user_site_table.c.site)):
        sites.setdefault(uid, []).append(site)
    return [{**r._mapping, "roles": roles.get(r.id, []), "sites": sites.get(r.id, [])}
            for r in rows]


def create_user(conn: sa.Connection, model: Model, *, username: str, now: dt.datetime,
                password_hash: str | None = None, roles: Iterable[str] = (),
                sites: Iterable[str] = (), display_name: str | None = None,
                email: str | None = None, is_service: bool = False) -> int:
    """Insert a user with roles and sites; :class:`IdentityError` (409) if the name is taken."""
    name = check_username(username)
    role_list = check_roles(model, roles)
    site_list = check_sites(sites)
    if is_service and password_hash is not None:
        raise IdentityError("password", "service accounts sign in with API keys, not passwords")
    if find_user(conn, name) is not None:
        raise IdentityError("username", f"user {name!r} already exists", status=409)
    res = conn.execute(sa.insert(user_table).values(
        username=name, display_name=display_name, email=email, password_hash=password_hash,
        is_service=is_service, disabled=False, created_at=now, updated_at=now,
        password_changed_at=now if password_hash else None))
    user_id = int(res.inserted_primary_key[0])  # type: ignore[index]
    _replace(conn, user_role_table, "role", user_id, role_list)
    _replace(conn, user_site_table, "site", user_id, site_list)
    return user_id


def _replace(conn: sa.Connection, table: sa.Table, col: str, user_id: int,
             values: list[str]) -> None:
    conn.execute(sa.delete(table).where(table.c.user_id == user_id))
    if values:
        conn.execute(sa.insert(table), [{"user_id": user_id, col: v} for v in values])


def update_user(conn: sa.Connection, model: Model, user_id: int, now: dt.datetime, *,
                roles: Iterable[str] | None = None, sites: Iterable[str] | None = None,
                **values: Any) -> None:
    """Change columns (``display_name``, ``email``, ``disabled``, ``password_hash``...),
    roles and sites of a user; refuses to leave the system without an active admin."""
    before = get_user(conn, user_id)
    if before is None:
        raise IdentityError("id", f"no user with id {user_id}", status=404)
    if "password_hash" in values:
        if before["is_service"] and values["password_hash"] is not None:
            raise IdentityError("password",
                                "service accounts sign in with API keys, not passwords")
        values["password_changed_at"] = now
    new_roles = check_roles(model, roles) if roles is not None else None
    new_sites = check_sites(sites) if sites is not None else None
    granting = admin_roles(model)
    was_admin = not before["disabled"] and bool(granting & set(before["roles"]))
    stays_admin = not values.get("disabled", before["disabled"]) and bool(
        granting & set(new_roles if new_roles is not None else before["roles"]))
    if was_admin and not stays_admin and count_active_admins(conn, model, user_id) == 0:
        raise IdentityError("roles" if new_roles is not None else "disabled",
                            f"user {before['username']!r} is the last active admin", 409)
    conn.execute(sa.update(user_table).where(user_table.c.id == user_id)
                 .values(updated_at=now, **values))
    if new_roles is not None:
        _replace(conn, user_role_table, "role", user_id, new_roles)
    if new_sites is not None:
        _replace(conn, user_site_table, "site", user_id, new_sites)
    announce(conn, USER, user_id)  # cached principals of this user are stale now


def delete_user(conn: sa.Connection, model: Model, user_id: int) -> dict[str, Any]:
    """Delete a user (sessions, keys and assignments go with it); returns what was deleted."""
    before = get_user(conn, user_id)
    if before is None:
        raise IdentityError("id", f"no user with id {user_id}", status=404)
    if (not before["disabled"] and admin_roles(model) & set(before["roles"])
            and count_active_admins(conn, model, user_id) == 0):
        raise IdentityError("id", f"user {before['username']!r} is the last active admin", 409)
    for table in (session_table, api_key_table, user_role_table, user_site_table):
        conn.execute(sa.delete(table).where(table.c.user_id == user_id))
    conn.execute(sa.delete(user_table).where(user_table.c.id == user_id))
    announce(conn, USER, user_id)
    return before


def count_active_admins(conn: sa.Connection, model: Model, excluding: int | None = None) -> int:
    """Enabled users holding a role that grants admin (optionally not counting one user)."""
    q = (sa.select(sa.func.count(sa.distinct(user_table.c.id)))
         .join(user_role_table, user_role_table.c.user_id == user_table.c.id)
         .where(user_role_table.c.role.in_(sorted(admin_roles(model))),
                user_table.c.disabled.is_(sa.false())))
    if excluding is not None:
        q = q.where(user_table.c.id != excluding)
    return int(conn.execute(q).scalar_one())
