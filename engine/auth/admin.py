"""``/api/auth/users`` and ``/api/auth/sessions``: user and session administration (admin)."""

from __future__ import annotations

import logging
from typing import Any, NoReturn

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint

from engine.audit import record

from .access import require_roles
from .errors import fail
from .lockout import UNLOCK, clear_throttle
from .passwords import PasswordPolicyError, check_password_policy
from .schemas import (
    SessionPageSchema,
    SessionQuerySchema,
    UserPatchSchema,
    UserSchema,
)
from .sessions import list_sessions, revoke_session, revoke_user_sessions
from .state import get_state
from .users import IdentityError, create_user, delete_user, get_user, list_users, update_user

log = logging.getLogger(__name__)

#: audit snapshot of a user: everything but timestamps (the audit row has its own)
_SNAPSHOT_SKIP = ("created_at", "updated_at", "last_login_at", "password_changed_at")


def _snapshot(user: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if user is None else {k: v for k, v in user.items() if k not in _SNAPSHOT_SKIP}


def _fail(err: IdentityError) -> NoReturn:
    fail(err.status, str(err), field=err.field)


def _hash_new_password(password: str, username: str) -> str:
    try:
        check_password_policy(password, username)
    except PasswordPolicyError as err:
        fail(422, str(err), field="password")
    return get_state().passwords.hash(password)


def build_admin_blueprint() -> Blueprint:
    """A fresh ``auth_admin`` blueprint (users and sessions; admin role required)."""
    blp = Blueprint("auth_admin", __name__, url_prefix="/api/auth",
                    description="Users and sessions (admin) / Usuarios y sesiones")

    @blp.route("/users")
    class Users(MethodView):
        @blp.response(200, UserSchema(many=True))
        def get(self) -> list[dict[str, Any]]:
            """Every user with roles and sites."""
            require_roles("admin")
            with get_state().engine.connect() as conn:
                return list_users(conn)

        @blp.arguments(UserSchema)
        @blp.response(201, UserSchema)
        def post(self, args: dict[str, Any]) -> dict[str, Any]:
            """Create a user (a service account when ``is_service``; it gets no password)."""
            require_roles("admin")
            state = get_state()
            password = args.pop("password", None)
            if not args["is_service"] and not password:
                fail(422, "a password is required for a person's account", field="password")
            pw_hash = _hash_new_password(password, args["username"]) if password else None
            now = state.now()
            try:
                with state.engine.begin() as conn:
                    uid = create_user(conn, state.model, now=now, password_hash=pw_hash, **args)
                    user = get_user(conn, uid)
                    record(conn, action="create", entity="campo_user", record_id=uid,
                           after=_snapshot(user), ts=now)
            except IdentityError as err:
                _fail(err)
            assert user is not None
            return user

    @blp.route("/users/<id(param='user_id'):user_id>")
    class User(MethodView):
        @blp.response(200, UserSchema)
        def get(self, user_id: int) -> dict[str, Any]:
            """One user."""
            require_roles("admin")
            with get_state().engine.connect() as conn:
                user = get_user(conn, user_id)
            if user is None:
                fail(404, f"no user with id {user_id}")
            return user

        @blp.arguments(UserPatchSchema)
        @blp.response(200, UserSchema)
        def patch(self, args: dict[str, Any], user_id: int) -> dict[str, Any]:
            """Change a user; disabling or a new password revokes the user's sessions."""
            require_roles("admin")
            state = get_state()
            now = state.now()
            try:
                with state.engine.begin() as conn:
                    before = get_user(conn, user_id)
                    if before is None:
                        fail(404, f"no user with id {user_id}")
                    password = args.pop("password", None)
                    if password is not None:
                        args["password_hash"] = _hash_new_password(password, before["username"])
                    update_user(conn, state.model, user_id, now, **args)
                    after = get_user(conn, user_id)
                    revoked = 0
                    if args.get("disabled") or password is not None:
                        why = "user disabled" if args.get("disabled") else "password reset"
                        revoked = revoke_user_sessions(conn, user_id, now, why)
                    detail = {"password_changed": password is not None,
                              "sessions_revoked": revoked}
                    record(conn, action="update", entity="campo_user", record_id=user_id,
                           before=_snapshot(before), after=_snapshot(after), detail=detail,
                           ts=now)
            except IdentityError as err:
                _fail(err)
            assert after is not None
            return after

        @blp.response(204)
        def delete(self, user_id: int) -> None:
            """Delete a user with its sessions, API keys and assignments."""
            p = require_roles("admin")
            if p.user_id == user_id:
                fail(409, "you cannot delete your own account")
            state = get_state()
            now = state.now()
            try:
                with state.engine.begin() as conn:
                    gone = delete_user(conn, state.model, user_id)
                    record(conn, action="delete", entity="campo_user", record_id=user_id,
                           before=_snapshot(gone), ts=now)
            except IdentityError as err:
                _fail(err)

    @blp.route("/users/<id(param='user_id'):user_id>/unlock", methods=["POST"])
    @blp.response(204)
    def unlock(user_id: int) -> None:
        """Lift a login lockout of a user."""
        require_roles("admin")
        state = get_state()
        with state.engine.begin() as conn:
            user = get_user(conn, user_id)
            if user is None:
                fail(404, f"no user with id {user_id}")
            record(conn, action=UNLOCK, entity="campo_user", record_id=user_id,
                   ts=state.now())
        clear_throttle(state, user["username"])

    @blp.route("/sessions", methods=["GET"])
    @blp.arguments(SessionQuerySchema, location="query", unknown=ma.RAISE)
    @blp.response(200, SessionPageSchema)
    def sessions(args: dict[str, Any]) -> dict[str, Any]:
        """Sessions, newest first; filter by ``user_id`` and ``active``."""
        require_roles("admin")
        state = get_state()
        page, size = args.pop("page"), args.pop("page_size")
        with state.engine.connect() as conn:
            items, total = list_sessions(conn, state.now(), limit=size,
                                         offset=(page - 1) * size, **args)
        return {"items": items, "total": total, "page": page, "page_size": size}

    @blp.route("/sessions/<string:session_id>", methods=["DELETE"])
    @blp.response(204)
    def revoke(session_id: str) -> None:
        """Revoke a session."""
        require_roles("admin")
        state = get_state()
        now = state.now()
        with state.engine.begin() as conn:
            if not revoke_session(conn, session_id, now, "revoked by admin"):
                fail(404, f"no live session {session_id!r}")
            record(conn, action="session.revoke", entity="campo_session",
                   record_id=session_id, ts=now)

    return blp
