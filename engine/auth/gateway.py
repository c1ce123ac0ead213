"""The gateway hooks: body limit, the token guard, per-user rate limits, CORS, headers.

Order of ``before_request`` hooks: request id (``engine.audit``), then :func:`guard`
(body size, credentials -> principal on ``flask.g``), then :func:`rate_limit`, the
whole-API limit keyed by the principal (or the client IP on public endpoints).

The guard asks the credential cache first (:mod:`engine.auth.cache`): a token or key
verified in the last ``auth_cache_seconds`` costs a dictionary lookup. On a miss it
verifies the token and reads the session and the principal on one pooled connection,
returned before the view takes its own, so a request never holds two.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from flask import Flask, g, request
from flask_cors import CORS

from engine.audit.writer import PRINCIPAL_KEY
from engine.counters import Verdict

from .apikeys import check_api_key
from .cache import Entry
from .errors import fail
from .principal import ENGINE_ENVIRON, Principal, load_principal, optional_principal
from .state import AuthState, get_state
from .tokens import AUTH_CONN_G, CLAIMS_G, verify_request_token

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
    inside = request.environ.get(ENGINE_ENVIRON)
    if isinstance(inside, Principal) and inside.engine:  # in process only (see the key)
        return inside
    cache = state.cache
    now = state.now()
    stamp = now.timestamp()
    key = _api_key_from_request()
    if key is not None:
        cred = "apikey " + key
        hit = cache.get(cred, stamp)
        if hit is not None:
            return hit.principal
        epoch = cache.epoch()
        with state.engine.connect() as conn:
            match = check_api_key(conn, key, now)
            if match is None:
                fail(401, "invalid API key")
            p = load_principal(conn, state.model, user_id=match.user_id,
                               username=match.username, is_service=match.is_service,
                               api_key_id=match.key_id)
        cache.put(cred, Entry(p, None, math.inf, stamp, time.monotonic()), epoch)
        return p
    header = request.headers.get("Authorization")
    token = header[7:].strip() if header and header[:7].lower() == "bearer " else None
    if token:
        hit = cache.get(token, stamp)
        if hit is not None:
            setattr(g, CLAIMS_G, hit.claims)
            return hit.principal
    epoch = cache.epoch()
    with state.engine.connect() as conn:
        setattr(g, AUTH_CONN_G, conn)
        try:
            claims, session = verify_request_token()
            p = load_principal(conn, state.model, user_id=session.user_id,
                               username=session.username, is_service=False,
                               session_id=session.session_id)
        finally:
            setattr(g, AUTH_CONN_G, None)
    if token:
        ends = min(float(claims["exp"]), session.expires_at.timestamp()
                   if session.expires_at is not None else math.inf)
        cache.put(token, Entry(p, claims, ends, stamp, time.monotonic()), epoch)
    return p


def guard() -> None:
    """Refuse oversized bodies and any request to a non-public path without credentials."""
    state = get_state()
    limit = state.settings.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        fail(413, f"request body larger than {limit} bytes")
    if request.method == "OPTIONS" or state.is_public(request.path):
        return
    setattr(g, PRINCIPAL_KEY, authenticate(state))


#: the request's rate-limit verdict, for :class:`ResponseHeaders`
RATE_ENVIRON = "campo.rate"


def rate_limit() -> None:
    """The whole-API limit per user (per client IP before authentication); 429 over it."""
    state = get_state()
    rate = state.api_rate
    if rate is None or request.method == "OPTIONS":
        return
    p = optional_principal()
    if p is not None and p.engine:  # the engine's own in-process writes are not throttled
        return
    key = f"api:user:{p.user_id}" if p is not None else f"api:ip:{request.remote_addr}"
    now = state.now().timestamp()  # the app's clock: a test's is fixed, so no window edge
    verdict = state.counters.hit(key, rate.amount, rate.period, now=now)
    request.environ[RATE_ENVIRON] = verdict
    if not verdict.allowed:
        fail(429, f"rate limit exceeded ({state.settings.api_rate_limit}); try again later",
             headers={"Retry-After": str(max(1, int(verdict.reset - now) + 1))})


_SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Permissions-Policy", "camera=(), microphone=(), geolocation=()"),
)
_HSTS = ("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
_NO_STORE = ("Cache-Control", "no-store")


class ResponseHeaders:
    """WSGI middleware: the security headers (without overriding a view's own choice), the
    rate-limit figures of the request and ``Cache-Control: no-store`` on ``/api/auth/``.

    Added to the header list the app hands to ``start_response`` in one pass, so every
    response gets them, error pages included; through werkzeug's ``Headers`` (a validation
    regex per value) and two ``after_request`` hooks they cost ~5 % of a generated create.
    """

    def __init__(self, app: Any, docs_prefix: str) -> None:
        self.app = app
        self.docs_prefix = docs_prefix
        plain = [*_SECURITY_HEADERS, ("Content-Security-Policy", CSP)]
        docs = [*_SECURITY_HEADERS, ("Content-Security-Policy", DOCS_CSP)]
        #: (docs page?, HTTPS?) -> [(lower-case name, header)]
        self._sets = {(d, tls): [(k.lower(), (k, v)) for k, v in (*base, *[_HSTS] * tls)]
                      for d, base in ((False, plain), (True, docs)) for tls in (False, True)}

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        path: str = environ.get("PATH_INFO", "")
        prefix = self.docs_prefix
        docs = path.startswith(prefix) and (len(path) == len(prefix) or path[len(prefix)] == "/")
        wanted = self._sets[docs, environ.get("wsgi.url_scheme") == "https"]
        auth = path.startswith("/api/auth/")

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            present = {k.lower() for k, _ in headers}
            headers.extend(pair for lower, pair in wanted if lower not in present)
            verdict: Verdict | None = environ.get(RATE_ENVIRON)
            if verdict is not None:
                headers.append(("X-RateLimit-Limit", str(verdict.limit)))
                headers.append(("X-RateLimit-Remaining", str(verdict.remaining)))
                headers.append(("X-RateLimit-Reset", str(int(verdict.reset))))
            if auth:
                if "cache-control" in present:
                    headers[:] = [h for h in headers if h[0].lower() != "cache-control"]
                headers.append(_NO_STORE)
            return start_response(status, headers, exc_info)

        return self.app(environ, start)


def install_gateway(app: Flask, state: AuthState) -> None:
    """Register the guard, the limiter, CORS and the security headers on ``app``."""
    app.config["MAX_CONTENT_LENGTH"] = state.settings.max_body_bytes
    app.before_request(guard)
    app.before_request(rate_limit)
    origins = [o.strip() for o in state.settings.cors_origins.split(",") if o.strip()]
    if origins:
        CORS(app, resources={r"/api/*": {"origins": "*" if origins == ["*"] else origins}},
             allow_headers=["Authorization", "Content-Type", API_KEY_HEADER, "X-Request-ID",
                            "If-Match"],
             expose_headers=["X-Request-ID", "Retry-After", "ETag", "X-RateLimit-Limit",
                             "X-RateLimit-Remaining", "X-RateLimit-Reset"],
             supports_credentials=False, max_age=600)
    app.wsgi_app = ResponseHeaders(app.wsgi_app, state.docs_prefix)  # type: ignore[method-assign]
