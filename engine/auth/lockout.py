"""Login throttling: per-IP and per-name rate limits, and lockout after repeated failures.

Both treat a user name the same whether or not the user exists, so neither tells an
attacker which names are real.

- Rate limit (:mod:`engine.auth.limits`, shared by the worker processes):
  ``login_rate_limit`` attempts per client IP and per user name; more answer 429.
- Lockout (counted from the audit trail, so it holds across processes and restarts): when
  the last ``lockout_attempts`` failed logins (or wrong current passwords given to
  ``POST /api/auth/password``) of a name since its last successful login or
  unlock all fall within ``lockout_minutes``, the name is locked for ``lockout_minutes``
  after the last of them. Attempts while locked answer 429 and are not counted.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import NoReturn

import sqlalchemy as sa

from engine.audit.tables import audit_table

from .errors import fail
from .state import AuthState

log = logging.getLogger(__name__)

FAILED = "login.failed"
#: a wrong current password on ``POST /api/auth/password``: counts towards the same lockout
PASSWORD_FAILED = "user.password.failed"
SUCCESS = "login"
LOCKED = "login.locked"
UNLOCK = "user.unlock"


def too_many(message: str, retry_after: int) -> NoReturn:
    """Abort with 429 and a ``Retry-After`` header."""
    fail(429, message, headers={"Retry-After": str(max(1, retry_after))})


def throttle_login(state: AuthState, ip: str, username: str) -> None:
    """Count a login attempt against the IP and the name; 429 when either is over limit."""
    rate = state.login_rate
    if rate is None:
        return
    # the app's clock (a test's is fixed): a window boundary cannot fall between attempts
    now = state.now().timestamp()
    for scope, key in (("ip", ip), ("user", username)):
        verdict = state.counters.hit(f"login:{scope}:{key}", rate.amount, rate.period, now=now)
        if not verdict.allowed:
            log.warning("login rate limit hit for %s %s", scope, key)
            too_many("too many login attempts; try again later", int(verdict.reset - now) + 1)


def clear_throttle(state: AuthState, username: str) -> None:
    """Forget the per-name login count (after an admin unlock)."""
    state.counters.clear(f"login:user:{username}")


def locked_until(conn: sa.Connection, username: str, user_id: int | None, now: dt.datetime,
                 attempts: int, window: dt.timedelta) -> dt.datetime | None:
    """The end of the lock on ``username``, or ``None`` when it may try to log in."""
    if attempts <= 0:
        return None
    a = audit_table
    resets = sa.and_(a.c.action == SUCCESS, a.c.username == username)
    if user_id is not None:
        resets = sa.or_(resets, sa.and_(a.c.action == UNLOCK, a.c.entity == "campo_user",
                                        a.c.record_id == str(user_id)))
    since = now - 2 * window
    last_reset = conn.execute(sa.select(sa.func.max(a.c.ts))
                              .where(resets, a.c.ts > since)).scalar()
    if last_reset is not None:
        since = max(since, last_reset)
    fails = list(conn.execute(
        sa.select(a.c.ts).where(a.c.action.in_((FAILED, PASSWORD_FAILED)),
                                a.c.username == username, a.c.ts > since)
        .order_by(a.c.ts.desc()).limit(attempts)).scalars())
    if len(fails) < attempts or fails[0] - fails[-1] > window:
        return None
    until: dt.datetime = fails[0] + window
    return until if now < until else None
