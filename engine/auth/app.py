"""Wire authentication, sessions, the gateway and the audit API into a Flask app.

Example::

    app = Flask(__name__)
    app.config.update(API_TITLE="Campo", API_VERSION="1", OPENAPI_VERSION="3.0.3")
    api = Api(app)
    engine = create_engine_for(settings.resolved_database_url())
    init_app(app, engine, settings, model, api=api)   # before registering other blueprints
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable

import sqlalchemy as sa
from argon2 import PasswordHasher
from flask import Flask
from flask_smorest import Api
from sqlalchemy.engine import Engine
from werkzeug.exceptions import HTTPException

from engine.api.bounds import IdConverter
from engine.api.errors import http_error
from engine.audit import install_request_id, record
from engine.audit.views import build_audit_blueprint
from engine.settings import Settings
from metamodel import Model

from .admin import build_admin_blueprint
from .cache import CredentialCache
from .config import resolve_jwt_secret
from .gateway import install_gateway
from .limits import Rate, SharedCounters
from .notify import listen
from .passwords import PasswordPolicyError, Passwords, check_password_policy
from .state import DEFAULT_PUBLIC, EXTENSION_KEY, AuthState, utcnow
from .tables import ensure_platform_tables
from .tokens import configure_jwt
from .users import IdentityError, count_active_admins, create_user, find_user
from .views import build_auth_blueprint

log = logging.getLogger(__name__)


def init_app(app: Flask, engine: Engine, settings: Settings, model: Model, *, api: Api,
             public: Iterable[str] = (), clock: Callable[[], dt.datetime] | None = None,
             hasher: PasswordHasher | None = None, docs_prefix: str = "/api/docs",
             create_tables: bool = True, counters: SharedCounters | None = None) -> AuthState:
    """Install auth on ``app``: tables, JWT, guard, limiter, CORS, headers and the
    ``/api/auth`` and ``/api/audit`` blueprints (registered through ``api``).

    :param public: more paths reachable without a token (a trailing ``/`` makes a prefix),
        e.g. the front end's static files.
    :param clock: replaces ``datetime.now(UTC)`` for sessions, lockouts and token times.
    :param hasher: an argon2 ``PasswordHasher`` (tests use cheaper parameters).
    :param counters: rate-limit counters made before the server forked its workers, so
        limits count across them (default: this process's own).
    :raises AuthConfigError: no acceptable JWT secret (production without one).
    """
    if EXTENSION_KEY in app.extensions:
        raise RuntimeError("engine.auth.init_app was already called for this app")
    secret = resolve_jwt_secret(settings)
    if create_tables:
        ensure_platform_tables(engine)
    entries = [*DEFAULT_PUBLIC, *public]
    state = AuthState(
        engine=engine, settings=settings, model=model, passwords=Passwords(hasher),
        counters=counters or SharedCounters(),
        cache=CredentialCache(settings.auth_cache_seconds),
        api_rate=Rate.parse(settings.api_rate_limit),
        login_rate=Rate.parse(settings.login_rate_limit), clock=clock or utcnow,
        public_paths=frozenset(p.rstrip("/") or "/" for p in entries),
        public_prefixes=tuple(p for p in entries if p.endswith("/")),
        docs_prefix=docs_prefix.rstrip("/"),
    )
    app.extensions[EXTENSION_KEY] = state
    if settings.auth_cache_seconds > 0:
        listen(engine)  # PostgreSQL: other processes' invalidations reach this one
    app.url_map.converters.setdefault("id", IdConverter)  # <id:...>: bounded ids
    app.register_error_handler(HTTPException, http_error)  # the API's error shape
    install_request_id(app)
    configure_jwt(app, secret, state)
    install_gateway(app, state)
    api.register_blueprint(build_auth_blueprint())
    api.register_blueprint(build_admin_blueprint())
    api.register_blueprint(build_audit_blueprint())
    api.spec.components.security_scheme(
        "bearer", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"})
    api.spec.components.security_scheme(
        "apiKey", {"type": "apiKey", "in": "header", "name": "X-API-Key"})
    api.spec.options["security"] = [{"bearer": []}, {"apiKey": []}]
    bootstrap_admin(state)
    return state


def bootstrap_admin(state: AuthState) -> bool:
    """Create the first admin from ``CAMPO_ADMIN_PASSWORD`` if no admin exists yet.

    Never overwrites an existing user; returns whether an admin was created.
    """
    settings = state.settings
    password = settings.admin_password.get_secret_value()
    if not password:
        with state.engine.connect() as conn:
            if count_active_admins(conn, state.model) == 0:
                log.warning("no active admin: nobody can sign in to manage users; create one "
                            "with 'campo user create admin --role admin --site \"*\"' or set "
                            "CAMPO_ADMIN_PASSWORD for one start")
        return False
    name = settings.admin_username
    try:
        check_password_policy(password, name)
    except PasswordPolicyError as err:
        log.error("CAMPO_ADMIN_PASSWORD refused: %s; no admin created", err)
        return False
    try:
        with state.engine.begin() as conn:
            if count_active_admins(conn, state.model) > 0 or find_user(conn, name) is not None:
                return False
            now = state.now()
            uid = create_user(conn, state.model, username=name, now=now,
                              password_hash=state.passwords.hash(password), roles=["admin"])
            record(conn, action="create", entity="campo_user", record_id=uid,
                   after={"username": name, "roles": ["admin"]}, username="bootstrap",
                   user_id=None, detail={"source": "CAMPO_ADMIN_PASSWORD"}, ts=now)
    except (IdentityError, sa.exc.IntegrityError):  # another web process created it first
        return False
    log.warning("created admin user %s from CAMPO_ADMIN_PASSWORD; unset the variable", name)
    return True
