"""Issue and check JWTs (flask-jwt-extended) bound to server-side sessions.

Tokens are HS256 only: ``alg: none``, other HMAC sizes and RSA/EC algorithms are refused
(so an RS/HS confusion cannot happen). A token must carry an integer ``exp``: one without
is refused even when its signature is good. Every token carries ``sid``, its session; the
blocklist callback rejects tokens of revoked or expired sessions and of disabled users.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any, NoReturn

import jwt as pyjwt
from flask import Flask, g
from flask_jwt_extended import (
    JWTManager,
    create_access_token,
    create_refresh_token,
    decode_token,
    get_jwt,
    verify_jwt_in_request,
)
from flask_jwt_extended.exceptions import (
    JWTExtendedException,
    NoAuthorizationError,
    RevokedTokenError,
    WrongTokenError,
)

from .errors import fail
from .sessions import SessionState, session_state
from .state import AuthState, get_state

log = logging.getLogger(__name__)

ALGORITHM = "HS256"
ISSUER = "campo"
_SESSION_G = "campo_session_state"
#: ``flask.g`` attribute: a connection the token check may borrow (one checkout per request)
AUTH_CONN_G = "campo_auth_conn"
#: ``flask.g`` attribute: the claims of a token the credential cache vouched for
CLAIMS_G = "campo_token_claims"
BEARER = {"WWW-Authenticate": 'Bearer realm="campo"'}


def configure_jwt(app: Flask, secret: str, state: AuthState) -> JWTManager:
    """Set flask-jwt-extended's config and callbacks on ``app``."""
    app.config.update(
        JWT_SECRET_KEY=secret,
        JWT_ALGORITHM=ALGORITHM,
        JWT_DECODE_ALGORITHMS=[ALGORITHM],
        JWT_TOKEN_LOCATION=["headers"],
        JWT_HEADER_TYPE="Bearer",
        JWT_ENCODE_ISSUER=ISSUER,
        JWT_DECODE_ISSUER=ISSUER,
        JWT_DECODE_LEEWAY=0,
        JWT_ACCESS_TOKEN_EXPIRES=state.access_lifetime,
        JWT_REFRESH_TOKEN_EXPIRES=state.refresh_lifetime,
        JWT_ERROR_MESSAGE_KEY="message",
    )
    manager = JWTManager(app)

    @manager.token_verification_loader
    def _expires(_header: dict[str, Any], payload: dict[str, Any]) -> bool:
        return has_expiry(payload)

    @manager.token_in_blocklist_loader
    def _blocked(_header: dict[str, Any], payload: dict[str, Any]) -> bool:
        sid = payload.get("sid")
        if not isinstance(sid, str):
            return True
        st = get_state()
        shared = getattr(g, AUTH_CONN_G, None)  # the guard's connection, when it has one
        if shared is not None:
            found = session_state(shared, sid, st.now())
        else:
            with st.engine.connect() as conn:
                found = session_state(conn, sid, st.now())
        setattr(g, _SESSION_G, found)
        return found is None or not found.active or str(found.user_id) != payload.get("sub")

    def _reply(status: int, message: str) -> Any:
        return {"code": status, "status": "Unauthorized" if status == 401 else "Error",
                "message": message}, status, BEARER

    manager.expired_token_loader(lambda _h, _p: _reply(401, "token expired"))
    manager.invalid_token_loader(lambda _reason: _reply(401, "invalid token"))
    manager.unauthorized_loader(lambda _reason: _reply(401, "authentication required"))
    manager.revoked_token_loader(lambda _h, _p: _reply(401, "session revoked or expired"))
    manager.user_lookup_error_loader(lambda _h, _p: _reply(401, "unknown user"))
    manager.token_verification_failed_loader(lambda _h, _p: _reply(401, "invalid token"))
    return manager


def has_expiry(claims: dict[str, Any]) -> bool:
    """Whether a token's claims carry an integer ``exp`` (tokens without one are refused)."""
    exp = claims.get("exp")
    return type(exp) is int


def issue_tokens(state: AuthState, user_id: int, session_id: str,
                 refresh_jti: str) -> dict[str, Any]:
    """A new access and refresh token pair for a session, timed by ``state``'s clock."""
    now = state.now()
    stamp = int(now.timestamp())
    access_exp = now + state.access_lifetime
    refresh_exp = now + state.refresh_lifetime
    access = create_access_token(identity=str(user_id), additional_claims={
        "sid": session_id, "iat": stamp, "nbf": stamp, "jti": uuid.uuid4().hex,
        "exp": int(access_exp.timestamp())})
    refresh = create_refresh_token(identity=str(user_id), additional_claims={
        "sid": session_id, "iat": stamp, "nbf": stamp, "jti": refresh_jti,
        "exp": int(refresh_exp.timestamp())})
    return {"access_token": access, "refresh_token": refresh, "token_type": "Bearer",
            "expires_in": int(state.access_lifetime.total_seconds()),
            "refresh_expires_in": int(state.refresh_lifetime.total_seconds()),
            "session_id": session_id}


def _fail(message: str) -> NoReturn:
    fail(401, message, headers=BEARER)


def verify_request_token(refresh: bool = False) -> tuple[dict[str, Any], SessionState]:
    """The verified claims of the request's bearer token and its live session; else 401."""
    try:
        verify_jwt_in_request(refresh=refresh)
    except NoAuthorizationError:
        _fail("authentication required")
    except pyjwt.ExpiredSignatureError:
        _fail("token expired")
    except RevokedTokenError:
        found = getattr(g, _SESSION_G, None)
        _fail(f"session {found.reason}" if found and found.reason else "session not valid")
    except WrongTokenError:
        _fail("a refresh token is required" if refresh else "an access token is required")
    except (JWTExtendedException, pyjwt.PyJWTError) as err:
        log.info("rejected token: %s", err)
        _fail("invalid token")
    found = getattr(g, _SESSION_G, None)
    if found is None:  # pragma: no cover - the blocklist callback always sets it
        _fail("session not valid")
    return get_jwt(), found


def decode_bearer(token: str) -> tuple[dict[str, Any], SessionState] | None:
    """Verify an access token given outside the Authorization header (e.g. a WebSocket).

    Returns ``None`` for any bad, expired or revoked token. Needs an app context.
    """
    try:
        claims = decode_token(token)
    except (JWTExtendedException, pyjwt.PyJWTError):
        return None
    if claims.get("type") != "access" or not isinstance(claims.get("sid"), str) \
            or not has_expiry(claims):
        return None
    st = get_state()
    with st.engine.connect() as conn:
        found = session_state(conn, claims["sid"], st.now())
    if found is None or not found.active or str(found.user_id) != claims.get("sub"):
        return None
    return claims, found

