"""A short-lived in-process cache of verified credentials: token or API key -> principal.

The guard asks the cache first; a hit costs one dictionary lookup and two clock reads
instead of a JWT decode and two queries. What keeps revocation working:

- **Staleness bound.** An entry is used for at most ``ttl`` seconds
  (``CAMPO_AUTH_CACHE_SECONDS``, default 2) after it was read from the database, by both the
  app's clock and the monotonic clock. A change made behind Campo's back (SQL by hand, a
  lost notification) is seen within that bound.
- **Invalidation.** Every change that can end or narrow a credential (logout, session
  revocation, refresh-token re-use, password change or reset, user disabled or deleted, role
  or site change, API key revoked) calls :func:`announce` on the connection that makes it:
  the affected entries of every cache in the process go at once, and on PostgreSQL a
  ``NOTIFY`` sent in the same transaction reaches every other process when it commits
  (:mod:`engine.auth.notify`).
- **No refill with old data.** A lookup that read the database while an invalidation
  happened does not store its result (an epoch counter), and for ``settle`` seconds after
  an invalidation the affected user's entries are not cached at all, so a request that
  read just before the change committed cannot keep the old state alive.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from .principal import Principal

log = logging.getLogger(__name__)

#: invalidation kinds: a session id, a user id, an API key id, or everything
SESSION, USER, API_KEY, ALL = "s", "u", "k", "*"

_caches: weakref.WeakSet[CredentialCache] = weakref.WeakSet()
_caches_lock = threading.Lock()


@dataclass(slots=True)
class Entry:
    """A verified credential: who it is, until when it may be used without asking again."""

    principal: Principal
    #: the access token's claims (``None`` for API keys)
    claims: dict[str, Any] | None
    #: epoch seconds after which the credential itself is dead (token or session expiry)
    expires: float
    #: app-clock epoch seconds and monotonic seconds of the database read
    checked: float
    checked_mono: float


class CredentialCache:
    """Credentials verified in the last ``ttl`` seconds (bounded to ``max_entries``)."""

    def __init__(self, ttl: float = 2.0, *, settle: float = 2.0,
                 max_entries: int = 20_000) -> None:
        self.ttl = ttl
        self.settle = settle
        self.max_entries = max_entries
        self._entries: dict[str, Entry] = {}
        self._lock = threading.Lock()
        self._epoch = 0
        self._hold: dict[tuple[str, Any], float] = {}  # (kind, id) -> monotonic deadline
        self._listeners: list[Callable[[str, Any], None]] = []
        self._sweep_at = 256
        with _caches_lock:
            _caches.add(self)

    def get(self, credential: str, now: float) -> Entry | None:
        """The fresh entry of ``credential`` at app-clock time ``now``, or ``None``."""
        e = self._entries.get(credential)
        if e is None:
            return None
        if (now >= e.expires or now - e.checked >= self.ttl or now < e.checked
                or time.monotonic() - e.checked_mono >= self.ttl):
            return None
        return e

    def epoch(self) -> int:
        """Take this before reading the database; pass it to :meth:`put`."""
        return self._epoch

    def put(self, credential: str, entry: Entry, epoch: int) -> None:
        """Remember ``entry`` unless an invalidation happened since ``epoch`` was taken."""
        if self.ttl <= 0:
            return
        p = entry.principal
        with self._lock:
            if epoch != self._epoch or self._held(p):
                return
            if len(self._entries) >= min(self.max_entries, self._sweep_at):
                self._evict(entry.checked)  # stale entries go: memory follows live tokens
                self._sweep_at = max(256, 2 * len(self._entries))
            self._entries[credential] = entry

    def _held(self, p: Principal) -> bool:
        if not self._hold:
            return False
        now = time.monotonic()
        for key in ((USER, p.user_id), (SESSION, p.session_id), (API_KEY, p.api_key_id),
                    (ALL, None)):
            until = self._hold.get(key)
            if until is not None:
                if until > now:
                    return True
                del self._hold[key]
        return False

    def _evict(self, now: float) -> None:
        stale = [k for k, e in self._entries.items() if now - e.checked >= self.ttl]
        for k in stale:
            del self._entries[k]
        if len(self._entries) >= self.max_entries:  # all fresh: drop the oldest half
            for k in list(self._entries)[: self.max_entries // 2]:
                del self._entries[k]

    def invalidate(self, kind: str, ident: Any) -> None:
        """Drop the entries a change affects (``kind`` is SESSION, USER, API_KEY or ALL)."""
        with self._lock:
            self._epoch += 1
            now = time.monotonic()
            if len(self._hold) > 1024:  # forget holds that ran out (bounded memory)
                self._hold = {k: t for k, t in self._hold.items() if t > now}
            self._hold[(kind, ident)] = now + self.settle
            if kind == ALL:
                self._entries.clear()
            else:
                attr = {SESSION: "session_id", USER: "user_id", API_KEY: "api_key_id"}[kind]
                gone = [k for k, e in self._entries.items()
                        if getattr(e.principal, attr) == ident]
                for k in gone:
                    del self._entries[k]
            listeners = list(self._listeners)
        for fn in listeners:
            try:
                fn(kind, ident)
            except Exception:  # a listener (open sockets) must not break a revocation
                log.exception("credential invalidation listener failed")

    def on_invalidate(self, fn: Callable[[str, Any], None]) -> None:
        """Call ``fn(kind, ident)`` after every invalidation (open WebSockets use it)."""
        with self._lock:
            self._listeners.append(fn)

    def __len__(self) -> int:
        return len(self._entries)


def invalidate_local(kind: str, ident: Any) -> None:
    """Invalidate in every cache of this process (what a NOTIFY received does too)."""
    with _caches_lock:
        caches = list(_caches)
    for cache in caches:
        cache.invalidate(kind, ident)


def payload(kind: str, ident: Any) -> str:
    """The NOTIFY payload of an invalidation."""
    return f"{kind}:{'' if ident is None else ident}"


def parse_payload(text: str) -> tuple[str, Any] | None:
    """``(kind, ident)`` of a NOTIFY payload, or ``None`` when malformed."""
    kind, _, ident = text.partition(":")
    if kind in (USER, API_KEY):
        return (kind, int(ident)) if ident.isdigit() else None
    if kind == SESSION and ident:
        return kind, ident
    if kind == ALL:
        return kind, None
    return None


PENDING_KEY = "campo_auth_pending"
_watched: weakref.WeakSet[sa.Engine] = weakref.WeakSet()


def _after_transaction(_dbapi_conn: Any, record: Any, *_args: Any) -> None:
    """Pool check-in (the transaction is over): repeat the connection's invalidations, so
    what re-read the old state before the commit (open WebSockets) reads again."""
    pending = record.info.pop(PENDING_KEY, None)
    for kind, ident in pending or ():
        invalidate_local(kind, ident)


def announce(conn: sa.Connection, kind: str, ident: Any) -> None:
    """A credential changed on ``conn``: drop it here now, and everywhere at commit.

    In this process every cache forgets it at once (and refuses to re-cache it for a
    moment, since the change is not committed yet), and again when the connection goes
    back to the pool after the transaction. On PostgreSQL a ``NOTIFY`` in the same
    transaction tells every other process (and this one again) when it commits.
    """
    invalidate_local(kind, ident)
    engine = conn.engine
    if engine not in _watched:
        _watched.add(engine)
        sa.event.listen(engine, "checkin", _after_transaction)
    conn.connection.info.setdefault(PENDING_KEY, []).append((kind, ident))
    if conn.dialect.name == "postgresql":
        from .notify import send_notify

        send_notify(conn, payload(kind, ident))
