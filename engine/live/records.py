"""Record events for ``/api/ws``: where they come from, and who may learn of them.

:class:`RecordFeed` brings this process every committed write of the API
(:mod:`engine.api.record_events`): on PostgreSQL a thread with its own connection
``LISTEN``\\ s on ``campo_records:<schema>`` (so every web process sees the writes of every
other), elsewhere the events are handed over in-process after the commit.

:class:`RecordAccess` decides, per user, with the functions the REST reads use:

- the user's roles must allow ``read`` on the entity (``Entity.allows``, as the API's
  ``authorize`` hook);
- a created or updated record must be inside the user's row scope now
  (:func:`engine.auth.hooks.principal_row_filter`, the REST reads' ``row_filter``): one
  query per batch, entity and distinct user;
- a deleted record cannot be looked up any more, so a user with a row scope on the entity
  hears of its deletion only when the socket was told of that record before (an earlier
  event, or an id the client showed and the scope confirmed at ``subscribe_records``).

A user never learns that a record they cannot see changed (a record that left
  the scope is forgotten by the sockets that knew it).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.sql.elements import True_

from engine.api.record_events import CHANNEL_PREFIX, RecordEvent, decode, subscribe_local
from engine.auth.hooks import principal_row_filter
from engine.db.listen import Listener

log = logging.getLogger(__name__)

Callback = Callable[[list[RecordEvent]], None]
#: ids a client may name in one ``subscribe_records``
MAX_IDS = 500


class RecordFeed:
    """This process's record events of ``engine`` to ``callback`` (any thread)."""

    def __init__(self, engine: Engine, callback: Callback, poll: float = 1.0) -> None:
        self.callback = callback
        self._ready = threading.Event()
        self._unsubscribe: Callable[[], None] | None = None
        self._listener: Listener | None = None
        if engine.dialect.name == "postgresql":
            self._listener = Listener(engine, CHANNEL_PREFIX, self._payload,
                                      what="record events", poll=poll)
        else:
            self._unsubscribe = subscribe_local(engine, callback)
            self._ready.set()

    def _payload(self, payload: str) -> None:
        events = decode(payload)
        if events:
            self.callback(events)

    def start(self) -> RecordFeed:
        if self._listener is not None:
            self._listener.start()
        return self

    def wait_ready(self, timeout: float = 5.0) -> bool:
        """Block until events are being received (``LISTEN`` in place)."""
        if self._listener is not None:
            return self._listener.wait_ready(timeout)
        return self._ready.wait(timeout)

    def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self._listener is not None:
            self._listener.stop()


class RecordAccess:
    """Who may hear of which record (see the module docstring); ``ctx`` is the API's
    :class:`~engine.api.context.ApiContext` (resources, tables, engine, model)."""

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx

    def readable(self, principal: Any, entity: str) -> bool:
        """Whether ``principal``'s roles may read ``entity`` (an unknown entity: no)."""
        res = self.ctx.resources.get(entity)
        return res is not None and res.entity.allows(principal.roles, "read")

    def scoped(self, principal: Any, entity: str) -> bool:
        """Whether ``principal`` sees only some records of ``entity``."""
        res = self.ctx.resources[entity]
        clause = principal_row_filter(principal, res.entity, res.table, self.ctx.model)
        return clause is not None and not isinstance(clause, True_)  # '*' sites: every row

    def visible(self, principal: Any, entity: str, ids: Iterable[int]) -> set[int]:
        """The records among ``ids`` that exist and are inside ``principal``'s scope now."""
        wanted = sorted(set(ids))
        if not wanted:
            return set()
        res = self.ctx.resources[entity]
        t = res.table
        stmt = sa.select(t.c.id).where(t.c.id.in_(wanted))
        scope = principal_row_filter(principal, res.entity, t, self.ctx.model)
        if scope is not None:
            stmt = stmt.where(scope)
        with self.ctx.engine.connect() as conn:
            return set(conn.execute(stmt).scalars())
