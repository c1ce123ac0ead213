"""Check an access token outside a request's ``Authorization`` header (open WebSockets).

:func:`check_token` answers what a long-lived connection needs to know, again and again:
is this token still good, for whom, until when, and if not, why (the reason it tells the
client). It goes through the credential cache like the request guard, so a socket costs
no query while nothing changes; ``fresh=True`` skips the cache (after an invalidation).
Needs an app context (the JWT settings live on the app).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import jwt as pyjwt
from flask_jwt_extended import decode_token
from flask_jwt_extended.exceptions import JWTExtendedException

from .cache import Entry
from .principal import Principal, load_principal
from .sessions import session_state
from .state import AuthState


@dataclass(frozen=True, slots=True)
class TokenCheck:
    """A good token (``principal`` set) or a refusal (``reason`` set)."""

    principal: Principal | None
    #: epoch seconds when the token (or its session) stops being valid
    expires: float = 0.0
    reason: str | None = None
    #: the refusal is an expired token (the client may re-authenticate), not a revocation
    expired: bool = False


def check_token(state: AuthState, token: str, *, fresh: bool = False) -> TokenCheck:
    """Whether ``token`` is a live access token, and whose."""
    now = state.now()
    stamp = now.timestamp()
    if not fresh:
        hit = state.cache.get(token, stamp)
        if hit is not None and hit.claims is not None:
            return TokenCheck(hit.principal, hit.expires)
    epoch = state.cache.epoch()
    try:
        claims: dict[str, Any] = decode_token(token, allow_expired=True)
    except (JWTExtendedException, pyjwt.PyJWTError):
        return TokenCheck(None, reason="invalid token")
    if claims.get("type") != "access" or not isinstance(claims.get("sid"), str):
        return TokenCheck(None, reason="an access token is required")
    if float(claims.get("exp", 0)) <= stamp:
        return TokenCheck(None, reason="token expired", expired=True)
    with state.engine.connect() as conn:
        found = session_state(conn, claims["sid"], now)
        if found is None or str(found.user_id) != claims.get("sub"):
            return TokenCheck(None, reason="session not valid")
        if not found.active:
            return TokenCheck(None, reason=f"session {found.reason}")
        p = load_principal(conn, state.model, user_id=found.user_id, username=found.username,
                           is_service=False, session_id=found.session_id)
    ends = min(float(claims["exp"]), found.expires_at.timestamp()
               if found.expires_at is not None else math.inf)
    state.cache.put(token, Entry(p, claims, ends, stamp, time.monotonic()), epoch)
    return TokenCheck(p, ends)
