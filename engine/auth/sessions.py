"""Server-side sessions: one row per login, revocable, with refresh-token rotation.

A session remembers the one refresh token (its ``jti``) that may still be used. Refreshing
swaps it for a new one in a single conditional ``UPDATE``; presenting an older token of
the session is re-use (a stolen token, or a thief racing the owner), and revokes the whole
session, so every access and refresh token of it stops working.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from .cache import SESSION, USER, announce
from .tables import session_table, user_table


@dataclass(frozen=True)
class SessionState:
    """What a token check needs to know about a session and its user."""

    session_id: str
    user_id: int
    username: str
    refresh_jti: str
    active: bool
    reason: str | None
    expires_at: dt.datetime | None = None


def new_session_id() -> str:
    """A random, unguessable session id."""
    return uuid.uuid4().hex


def create_session(conn: sa.Connection, user_id: int, now: dt.datetime, lifetime: dt.timedelta,
                   refresh_jti: str, ip: str | None, user_agent: str | None) -> str:
    """Insert a session for a successful login; return its id."""
    sid = new_session_id()
    conn.execute(sa.insert(session_table).values(
        id=sid, user_id=user_id, created_at=now, last_seen_at=now, expires_at=now + lifetime,
        refresh_jti=refresh_jti, ip=(ip or "")[:64] or None,
        user_agent=(user_agent or "")[:255] or None))
    return sid


def session_state(conn: sa.Connection, session_id: str, now: dt.datetime) -> SessionState | None:
    """The session and whether it may still be used (not revoked, not expired, user enabled)."""
    row = conn.execute(
        sa.select(session_table.c.id, session_table.c.user_id, session_table.c.refresh_jti,
                  session_table.c.expires_at, session_table.c.revoked_at,
                  session_table.c.revoked_reason, user_table.c.username, user_table.c.disabled)
        .join(user_table, user_table.c.id == session_table.c.user_id)
        .where(session_table.c.id == session_id)).first()
    if row is None:
        return None
    reason = None
    if row.revoked_at is not None:
        reason = f"revoked ({row.revoked_reason or 'unknown'})"
    elif row.expires_at <= now:
        reason = "expired"
    elif row.disabled:
        reason = "user disabled"
    return SessionState(row.id, int(row.user_id), row.username, row.refresh_jti,
                        reason is None, reason, row.expires_at)


def rotate_refresh(conn: sa.Connection, session_id: str, old_jti: str, new_jti: str,
                   now: dt.datetime, lifetime: dt.timedelta) -> bool:
    """Swap the session's refresh token; ``False`` if ``old_jti`` is not the current one."""
    res = conn.execute(
        sa.update(session_table)
        .where(session_table.c.id == session_id, session_table.c.refresh_jti == old_jti,
               session_table.c.revoked_at.is_(None), session_table.c.expires_at > now)
        .values(refresh_jti=new_jti, last_seen_at=now, expires_at=now + lifetime))
    return res.rowcount == 1


def revoke_session(conn: sa.Connection, session_id: str, now: dt.datetime, reason: str) -> bool:
    """Revoke one session; ``False`` if it does not exist or was already revoked."""
    res = conn.execute(
        sa.update(session_table)
        .where(session_table.c.id == session_id, session_table.c.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason[:64]))
    announce(conn, SESSION, session_id)
    return res.rowcount == 1


def revoke_user_sessions(conn: sa.Connection, user_id: int, now: dt.datetime, reason: str,
                         keep: str | None = None) -> int:
    """Revoke every live session of a user (except ``keep``); return how many."""
    q = (sa.update(session_table)
         .where(session_table.c.user_id == user_id, session_table.c.revoked_at.is_(None))
         .values(revoked_at=now, revoked_reason=reason[:64]))
    if keep is not None:
        q = q.where(session_table.c.id != keep)
    n = int(conn.execute(q).rowcount)
    announce(conn, USER, user_id)  # the kept session re-reads too: it costs one query
    return n


def list_sessions(conn: sa.Connection, now: dt.datetime, user_id: int | None = None,
                  active: bool | None = None, limit: int = 100,
                  offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Sessions (newest first) with their user name, and the total matching count."""
    cond: list[Any] = []
    if user_id is not None:
        cond.append(session_table.c.user_id == user_id)
    live = sa.and_(session_table.c.revoked_at.is_(None), session_table.c.expires_at > now)
    if active is True:
        cond.append(live)
    elif active is False:
        cond.append(sa.not_(live))
    total = conn.execute(sa.select(sa.func.count()).select_from(session_table)
                         .where(*cond)).scalar_one()
    rows = conn.execute(
        sa.select(*(c for c in session_table.c if c.name != "refresh_jti"), user_table.c.username)
        .join(user_table, user_table.c.id == session_table.c.user_id)
        .where(*cond).order_by(session_table.c.created_at.desc(), session_table.c.id)
        .limit(limit).offset(offset)).all()
    out = []
    for r in rows:
        d = dict(r._mapping)
        d["active"] = d["revoked_at"] is None and d["expires_at"] > now
        out.append(d)
    return out, int(total)
