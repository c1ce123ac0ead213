"""The gateway hooks: body limit, the token guard, per-user rate limits, CORS, headers.

Order of ``before_request`` hooks: request id (``engine.audit``), then :func:`guard`
(body size, credentials -> principal on ``flask.g``), then flask-limiter's whole-API limit
keyed by the principal (or the client IP on public endpoints).
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, g, request
from flask_cors import CORS
from flask_limiter import Limiter, RateLimitExceeded

from engine.audit.writer import PRINCIPAL_KEY
from engine.settings import Settings

from .apikeys import check_api_key
from .errors import fail
from .principal import Principal, load_principal, optional_principal
from .state import AuthState, get_state
from .tokens import AUTH_CONN_G, verify_request_token

log = logging.getLogger(__name__)

CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; "
       "form-action 'self'; frame-ancestors 'none'")
#: the self-hosted API docs page initialises its bundle with an inline script and styles
DOCS_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
            "script-src 'self' 'unsafe-inline'; connect-src 'self'; font-src 'self' data:; "
            "object-src 'none'; base-uri 'self'; frame-ancestors 'none'")
API_KEY_HEADER = "X-API-Key"


def _api_key_from_request() -> str | None:
    auth = request.headers.get("Authorization", "")
    if auth[:7].lower() == "apikey ":
        return auth[7:].strip()
    key = request.headers.get(API_KEY_HEADER)
    return key.strip() if key is not None else None


def authenticate(state: AuthState) -> Principal:
    """The principal of the request's credentials (API key or bearer token); else 401."""
    key = _api_key_from_request()
    if key is not None:
        now = state.now()
        with state.engine.connect() as conn:
            match = check_api_key(conn, key, now)
            if match is None:
                fail(401, "invalid API key")
            return load_principal(conn, state.model, user_id=match.user_id,
                                  username=match.username, is_service=match.is_service,
                                  api_key_id=match.key_id)
    with state.engine.connect() as conn:
        setattr(g, AUTH_CONN_G, conn)
        try:
            _claims, session = verify_request_token()
            return load_principal(conn, state.model, user_id=session.user_id,
                                  username=session.username, is_service=False,
                                  session_id=session.session_id)
        finally:
            setattr(g, AUTH_CONN_G, None)


def guard() -> None:
    """Refuse oversized bodies and any request to a non-public path without credentials."""
    state = get_state()
    limit = state.settings.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        fail(413, f"request body larger than {limit} bytes")
    if request.method == "OPTIONS" or state.is_public(request.path):
        return
    setattr(g, PRINCIPAL_KEY, authenticate(state))


def rate_key() -> str:
    """The whole-API rate-limit key: the user, or the client IP before authentication."""
    p = optional_principal()
    return f"user:{p.user_id}" if p is not None else f"ip:{request.remote_addr}"


def build_limiter(settings: Settings) -> Limiter:
    """A limiter with the whole-API per-user limit (``api_rate_limit``)."""
    return Limiter(
        rate_key,
        application_limits=[settings.api_rate_limit] if settings.api_rate_limit else [],
        storage_uri=settings.rate_limit_storage,
        headers_enabled=True,
        strategy="fixed-window",
        key_prefix="campo",
    )


def _rate_limited(err: RateLimitExceeded) -> Any:
    return ({"code": 429, "status": "Too Many Requests",
             "message": f"rate limit exceeded ({err.description}); try again later"}, 429)


def _retry_after_only_when_refused(response: Response) -> Response:
    # flask-limiter adds Retry-After to every response; it means "refused, wait" (RFC 9110)
    if response.status_code not in (429, 503):
        response.headers.pop("Retry-After", None)
    return response


def security_headers(response: Response) -> Response:
    """Add the security headers (without overriding a view's own choice)."""
    state = get_state()
    h = response.headers
    h.setdefault("X-Content-Type-Options", "nosniff")
    h.setdefault("X-Frame-Options", "DENY")
    h.setdefault("Referrer-Policy", "no-referrer")
    h.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    h.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    docs = request.path == state.docs_prefix or request.path.startswith(state.docs_prefix + "/")
    h.setdefault("Content-Security-Policy", DOCS_CSP if docs else CSP)
    if request.is_secure:
        h.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    if request.path.startswith("/api/auth/"):
        h["Cache-Control"] = "no-store"
    return response


def install_gateway(app: Flask, state: AuthState) -> None:
    """Register the guard, the limiter, CORS and the security headers on ``app``."""
    app.config["MAX_CONTENT_LENGTH"] = state.settings.max_body_bytes
    app.before_request(guard)
    app.after_request(_retry_after_only_when_refused)  # runs after the limiter's headers
    state.limiter.init_app(app)
    app.register_error_handler(RateLimitExceeded, _rate_limited)
    origins = [o.strip() for o in state.settings.cors_origins.split(",") if o.strip()]
    if origins:
        CORS(app, resources={r"/api/*": {"origins": "*" if origins == ["*"] else origins}},
             allow_headers=["Authorization", "Content-Type", API_KEY_HEADER, "X-Request-ID",
                            "If-Match"],
             expose_headers=["X-Request-ID", "Retry-After", "ETag", "X-RateLimit-Limit",
                             "X-RateLimit-Remaining", "X-RateLimit-Reset"],
             supports_credentials=False, max_age=600)
    app.after_request(security_headers)
