"""``/api/auth``: login, refresh, logout, me and password change."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import sqlalchemy as sa
from flask import request
from flask_smorest import Blueprint

from engine.audit import record

from .errors import fail
from .lockout import (
    FAILED,
    LOCKED,
    PASSWORD_FAILED,
    SUCCESS,
    locked_until,
    throttle_login,
    too_many,
)
from .passwords import PasswordPolicyError, check_password_policy
from .principal import current_principal
from .schemas import LoginSchema, MeSchema, PasswordChangeSchema, TokenSchema
from .sessions import create_session, revoke_session, revoke_user_sessions, rotate_refresh
from .state import get_state
from .tables import user_table
from .tokens import issue_tokens, verify_request_token
from .users import find_user, get_user, normalize_username

log = logging.getLogger(__name__)

BAD_CREDENTIALS = "invalid user name or password"


def build_auth_blueprint() -> Blueprint:
    """A fresh ``auth`` blueprint (one per app: flask-smorest keeps docs on it)."""
    blp = Blueprint("auth", __name__, url_prefix="/api/auth",
                    description="Sign in, tokens and the signed-in user / Sesión y tokens")

    @blp.route("/login", methods=["POST"])
    @blp.doc(security=[])
    @blp.arguments(LoginSchema)
    @blp.response(200, TokenSchema)
    @blp.alt_response(401, description="invalid user name or password")
    @blp.alt_response(429, description="too many attempts or locked")
    def login(args: dict[str, Any]) -> dict[str, Any]:
        """Exchange a user name and password for an access and a refresh token."""
        state = get_state()
        name = normalize_username(args["username"])[:150]
        ip = request.remote_addr or "unknown"
        throttle_login(state, ip, name)
        now = state.now()
        result: dict[str, Any] | None = None
        until = None
        with state.engine.begin() as conn:
            row = find_user(conn, name)
            uid = int(row.id) if row is not None else None
            until = locked_until(conn, name, uid, now, state.settings.lockout_attempts,
                                 state.lockout_window)
            if until is not None:
                record(conn, action=LOCKED, entity="campo_user", record_id=uid, user_id=uid,
                       username=name, detail={"until": until}, ts=now)
            else:
                usable = (row is not None and not row.disabled and not row.is_service
                          and row.password_hash)
                ok, new_hash = state.passwords.verify(
                    row.password_hash if usable and row is not None else None,
                    args["password"])
                if not ok or row is None:
                    reason = ("unknown_user" if row is None else "disabled" if row.disabled
                              else "service_account" if row.is_service else "bad_password")
                    record(conn, action=FAILED, entity="campo_user", record_id=uid,
                           user_id=uid, username=name, detail={"reason": reason}, ts=now)
                else:
                    jti = uuid.uuid4().hex
                    sid = create_session(conn, row.id, now, state.refresh_lifetime, jti, ip,
                                         request.user_agent.string)
                    values: dict[str, Any] = {"last_login_at": now}
                    if new_hash:
                        values["password_hash"] = new_hash
                    conn.execute(sa.update(user_table).where(user_table.c.id == row.id)
                                 .values(**values))
                    record(conn, action=SUCCESS, entity="campo_session", record_id=sid,
                           user_id=row.id, username=row.username, ts=now)
                    result = issue_tokens(state, row.id, sid, jti)
        if until is not None:
            too_many("too many failed logins; try again later",
                     int((until - now).total_seconds()) + 1)
        if result is None:
            fail(401, BAD_CREDENTIALS)
        return result

    @blp.route("/refresh", methods=["POST"])
    @blp.doc(security=[{"bearer": []}])
    @blp.response(200, TokenSchema)
    @blp.alt_response(401, description="bad, expired, revoked or re-used refresh token")
    def refresh() -> dict[str, Any]:
        """Rotate the refresh token (send it as ``Authorization: Bearer``) for a new pair.

        A refresh token works once; using an old one again revokes the whole session.
        """
        state = get_state()
        claims, session = verify_request_token(refresh=True)
        now = state.now()
        new_jti = uuid.uuid4().hex
        with state.engine.begin() as conn:
            rotated = rotate_refresh(conn, session.session_id, claims["jti"], new_jti, now,
                                     state.refresh_lifetime)
            if not rotated:
                revoke_session(conn, session.session_id, now, "refresh token reuse")
                record(conn, action="session.reuse", entity="campo_session",
                       record_id=session.session_id, user_id=session.user_id,
                       username=session.username, ts=now)
                log.warning("refresh token re-used for session %s of %s; session revoked",
                            session.session_id, session.username)
        if not rotated:
            fail(401, "refresh token already used; the session has been revoked")
        return issue_tokens(state, session.user_id, session.session_id, new_jti)

    @blp.route("/logout", methods=["POST"])
    @blp.response(204)
    def logout() -> None:
        """Revoke the current session (its access and refresh tokens stop working)."""
        state = get_state()
        p = current_principal()
        if p.session_id is None:
            fail(400, "API keys have no session; revoke the key instead")
        now = state.now()
        with state.engine.begin() as conn:
            revoke_session(conn, p.session_id, now, "logout")
            record(conn, action="logout", entity="campo_session", record_id=p.session_id,
                   ts=now)

    @blp.route("/me", methods=["GET"])
    @blp.response(200, MeSchema)
    def me() -> dict[str, Any]:
        """The signed-in user, effective roles, sites and allowed actions per entity."""
        state = get_state()
        p = current_principal()
        with state.engine.connect() as conn:
            user = get_user(conn, p.user_id)
        return {"user": user, "roles": sorted(p.roles), "assigned_roles": sorted(p.assigned_roles),
                "sites": sorted(p.sites), "is_service": p.is_service,
                "session_id": p.session_id, "permissions": p.permissions(state.model)}

    @blp.route("/password", methods=["POST"])
    @blp.arguments(PasswordChangeSchema)
    @blp.response(204)
    @blp.alt_response(403, description="current password is wrong")
    @blp.alt_response(422, description="the new password breaks the password rule")
    @blp.alt_response(429, description="too many attempts or locked")
    def change_password(args: dict[str, Any]) -> None:
        """Change one's own password; every other session of the user is revoked.

        Guessing the current password is throttled and locked out like logins (per IP and
        per name, the same counters), and each wrong one is audited.
        """
        state = get_state()
        p = current_principal()
        throttle_login(state, request.remote_addr or "unknown", p.username)
        now = state.now()
        with state.engine.begin() as conn:
            until = locked_until(conn, p.username, p.user_id, now,
                                 state.settings.lockout_attempts, state.lockout_window)
            if until is not None:
                record(conn, action=LOCKED, entity="campo_user", record_id=p.user_id,
                       detail={"until": until, "via": "password"}, ts=now)
                ok = False
            else:
                row = conn.execute(sa.select(user_table.c.password_hash)
                                   .where(user_table.c.id == p.user_id)).first()
                ok, _ = state.passwords.verify(row.password_hash if row else None,
                                               args["current_password"])
                if not ok:
                    record(conn, action=PASSWORD_FAILED, entity="campo_user",
                           record_id=p.user_id, detail={"reason": "bad_current_password"},
                           ts=now)
        if until is not None:
            too_many("too many failed attempts; try again later",
                     int((until - now).total_seconds()) + 1)
        if not ok:
            fail(403, "current password is wrong", field="current_password")
        try:
            check_password_policy(args["new_password"], p.username)
        except PasswordPolicyError as err:
            fail(422, str(err), field="new_password")
        new_hash = state.passwords.hash(args["new_password"])
        with state.engine.begin() as conn:
            conn.execute(sa.update(user_table).where(user_table.c.id == p.user_id)
                         .values(password_hash=new_hash, password_changed_at=now, updated_at=now))
            n = revoke_user_sessions(conn, p.user_id, now, "password changed", keep=p.session_id)
            record(conn, action="user.password", entity="campo_user", record_id=p.user_id,
                   detail={"sessions_revoked": n}, ts=now)

    return blp
