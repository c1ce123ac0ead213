"""Per-application authentication state, kept in ``app.extensions["campo_auth"]``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from flask import current_app
from sqlalchemy.engine import Engine

from engine.settings import Settings
from metamodel import Model

from .cache import CredentialCache
from .limits import Rate, SharedCounters
from .passwords import Passwords

EXTENSION_KEY = "campo_auth"

#: exact paths reachable without a token; entries ending in ``/`` match as prefixes
DEFAULT_PUBLIC: tuple[str, ...] = (
    "/api/auth/login", "/api/auth/refresh", "/api/health",
    "/api/openapi.json", "/api/docs", "/api/docs/",
)


def utcnow() -> dt.datetime:
    """The current instant, timezone-aware UTC."""
    return dt.datetime.now(dt.UTC)


@dataclass
class AuthState:
    """What the auth views, hooks and callbacks of one app share."""

    engine: Engine
    settings: Settings
    model: Model
    passwords: Passwords
    #: rate-limit counters (shared by the worker processes of ``campo serve``)
    counters: SharedCounters
    #: verified credentials of the last few seconds (see :mod:`engine.auth.cache`)
    cache: CredentialCache
    api_rate: Rate | None = None
    login_rate: Rate | None = None
    #: the clock for sessions, lockouts and token times (tests may replace it)
    clock: Callable[[], dt.datetime] = utcnow
    public_paths: frozenset[str] = frozenset()
    public_prefixes: tuple[str, ...] = ()
    docs_prefix: str = "/api/docs"
    extra: dict[str, object] = field(default_factory=dict)

    def now(self) -> dt.datetime:
        """The current instant by this app's clock."""
        return self.clock()

    @property
    def access_lifetime(self) -> dt.timedelta:
        return dt.timedelta(minutes=self.settings.access_token_minutes)

    @property
    def refresh_lifetime(self) -> dt.timedelta:
        return dt.timedelta(days=self.settings.refresh_token_days)

    @property
    def lockout_window(self) -> dt.timedelta:
        return dt.timedelta(minutes=self.settings.lockout_minutes)

    def is_public(self, path: str) -> bool:
        """Whether ``path`` may be reached without credentials."""
        return path in self.public_paths or path.startswith(self.public_prefixes)


def get_state() -> AuthState:
    """The auth state of the current app (``RuntimeError`` if ``init_app`` was not called)."""
    state = current_app.extensions.get(EXTENSION_KEY)
    if not isinstance(state, AuthState):
        raise RuntimeError("engine.auth.init_app(app, ...) has not been called for this app")
    return state
