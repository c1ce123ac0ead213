"""Long-lived API keys for service accounts (the ``scada`` role), and only for them.

A person's account cannot get a key (:class:`ApiKeyError`), and a key whose owner is not a
service account does not authenticate: a key would otherwise outlive the owner's password
change or reset.

A key reads ``campo_<prefix>_<secret>``: the prefix finds the row, the secret is checked
against its SHA-256. A key has 256 bits of randomness, so a fast hash is as safe as a slow
one here and keeps per-request checks cheap; the key itself is shown once, never stored.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

import sqlalchemy as sa

from .cache import API_KEY, announce
from .tables import api_key_table, user_table

_KEY = re.compile(r"^campo_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True)
class ApiKeyMatch:
    """The key row and its owner, for a key that checks out."""

    key_id: int
    user_id: int
    name: str
    username: str
    is_service: bool


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


class ApiKeyError(ValueError):
    """A key cannot be made for this user (not a service account, or no such user)."""


def create_api_key(conn: sa.Connection, user_id: int, name: str, now: dt.datetime,
                   expires_at: dt.datetime | None = None) -> tuple[int, str]:
    """Store a new key for service account ``user_id``; return ``(key_id, key)`` — the only
    time it is seen. :class:`ApiKeyError` for a person's account."""
    owner = conn.execute(sa.select(user_table.c.username, user_table.c.is_service)
                         .where(user_table.c.id == user_id)).first()
    if owner is None:
        raise ApiKeyError(f"no user with id {user_id}")
    if not owner.is_service:
        raise ApiKeyError(f"{owner.username} is a person's account; API keys are for service "
                          "accounts only (create one with: campo user create NAME --service "
                          "--role scada)")
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    res = conn.execute(sa.insert(api_key_table).values(
        user_id=user_id, name=name[:100], prefix=prefix, key_hash=_digest(secret),
        created_at=now, expires_at=expires_at))
    return int(res.inserted_primary_key[0]), f"campo_{prefix}_{secret}"  # type: ignore[index]


def check_api_key(conn: sa.Connection, key: str, now: dt.datetime) -> ApiKeyMatch | None:
    """The matching live key of an enabled user, or ``None``."""
    m = _KEY.match(key.strip())
    if not m:
        return None
    row = conn.execute(
        sa.select(api_key_table.c.id, api_key_table.c.user_id, api_key_table.c.name,
                  api_key_table.c.key_hash, api_key_table.c.expires_at,
                  api_key_table.c.revoked_at, user_table.c.disabled,
                  user_table.c.username, user_table.c.is_service)
        .join(user_table, user_table.c.id == api_key_table.c.user_id)
        .where(api_key_table.c.prefix == m.group(1))).first()
    if row is None or not hmac.compare_digest(row.key_hash, _digest(m.group(2))):
        return None
    if row.revoked_at is not None or row.disabled or not row.is_service:
        return None
    if row.expires_at is not None and row.expires_at <= now:
        return None
    return ApiKeyMatch(int(row.id), int(row.user_id), row.name, row.username,
                       bool(row.is_service))


def revoke_api_key(conn: sa.Connection, key_id: int, now: dt.datetime) -> bool:
    """Revoke a key; ``False`` if there is no such live key."""
    res = conn.execute(sa.update(api_key_table)
                       .where(api_key_table.c.id == key_id, api_key_table.c.revoked_at.is_(None))
                       .values(revoked_at=now))
    announce(conn, API_KEY, key_id)
    return res.rowcount == 1


def list_api_keys(conn: sa.Connection, user_id: int | None = None) -> list[dict[str, object]]:
    """Keys (never their secrets) with their owner's name, newest first."""
    q = (sa.select(api_key_table.c.id, api_key_table.c.name, api_key_table.c.prefix,
                   api_key_table.c.created_at, api_key_table.c.expires_at,
                   api_key_table.c.revoked_at, user_table.c.username)
         .join(user_table, user_table.c.id == api_key_table.c.user_id)
         .order_by(api_key_table.c.id.desc()))
    if user_id is not None:
        q = q.where(api_key_table.c.user_id == user_id)
    return [dict(r._mapping) for r in conn.execute(q)]
