""""My account": the caller's own sessions (``/api/desk/account/sessions``).

Changing one's password is ``POST /api/auth/password``; listing and revoking every user's
sessions is for admins (``/api/auth/sessions``). Here a user sees and ends only their own.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import Response
from flask_smorest import Blueprint

from engine.api.errors import ApiError, json_response
from engine.audit import record
from engine.auth.principal import current_principal
from engine.auth.sessions import list_sessions, revoke_session
from engine.auth.tables import session_table

if TYPE_CHECKING:
    from .plugin import DeskPlugin


def _iso(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.isoformat()
    return value


def register(blp: Blueprint, plugin: DeskPlugin) -> None:
    """Add the account routes."""

    @blp.route("/account/sessions")
    @blp.doc(summary="The caller's live sessions (this one marked current)")
    def my_sessions() -> Response:
        p = current_principal()
        now = dt.datetime.now(dt.UTC)
        with plugin.engine.connect() as conn:
            rows, _ = list_sessions(conn, now, user_id=p.user_id, active=True, limit=100)
        items = [{"id": r["id"], "created_at": _iso(r["created_at"]),
                  "last_seen_at": _iso(r["last_seen_at"]), "expires_at": _iso(r["expires_at"]),
                  "ip": r["ip"], "user_agent": r["user_agent"],
                  "current": r["id"] == p.session_id} for r in rows]
        return json_response({"items": items})

    @blp.route("/account/sessions/<string:session_id>", methods=["DELETE"])
    @blp.doc(summary="End one of the caller's own sessions")
    def end_session(session_id: str) -> Response:
        p = current_principal()
        now = dt.datetime.now(dt.UTC)
        with plugin.engine.begin() as conn:
            owner = conn.execute(sa.select(session_table.c.user_id)
                                 .where(session_table.c.id == session_id)).scalar()
            if owner != p.user_id or not revoke_session(conn, session_id, now,
                                                        "ended by its user"):
                raise ApiError(404, f"no live session {session_id!r} of yours")
            record(conn, action="session.revoke", entity="campo_session",
                   record_id=session_id, ts=now)
        return Response(status=204)
