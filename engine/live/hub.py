"""The live path of ``/api/ws``: every WebSocket of a web process on one asyncio event loop.

Threads do not hold sockets: the WSGI view answers the handshake and hands the connection
over (:mod:`engine.live.websocket`); from then on a socket is a :class:`Client` on the hub's
loop (one thread per process), fed by one bus subscription.

- **Fan-out.** The bus calls the hub once per batch of changes; the hub finds the sockets
  subscribed to each tag through an index, checks each delivered value with
  :func:`engine.live.access.tag_visible` (once per value and group of sockets whose users
  see the same sites) and encodes one frame per distinct payload, written to every socket
  that gets it.
- **Slow consumers.** A socket whose send buffer is full stops getting frames; its changes
  are coalesced (latest value per tag wins) and sent in one frame when it drains. One that
  stays blocked for :data:`SLOW_SECONDS` is closed (4008). Others never wait for it.
- **Limits.** At most ``ws_max_per_user`` sockets per user and ``ws_max_total`` per process
  (``CAMPO_WS_MAX_PER_USER``, ``CAMPO_WS_MAX_TOTAL``); more are closed with 4029 / 1013.
- **Alarm events.** ``{"type": "subscribe_alarms", "sites": [...]}`` (sites optional)
  subscribes the socket to the bus's ``alarms`` event channel (``app.extensions
  ["campo_events"]``); batches of transitions of the sites the user may see come as
  ``{"type": "alarms", "events": [...]}``. A slow socket keeps at most
  :data:`EVENT_BACKLOG` batches for when it drains.
- **Record events.** ``{"type": "subscribe_records", "entity": "wells.well", "ids": [...]}``
  (or ``"entities": [...]``) subscribes the socket to the committed writes of entities the
  user may read (:mod:`engine.live.records`); batches come as ``{"type": "records",
  "events": [{"entity", "id", "version", "op"}]}``, each event checked per socket against
  the user's read permission and row scope as they are now (:class:`RecordAccess`).
- **Sessions end sockets.** Each socket is re-checked (:func:`engine.auth.bearer.check_token`,
  through the credential cache) when the cache drops its user's or session's entry (logout,
  revocation, disable, password, role or site change, here or in another process) and at
  least every ``auth_cache_seconds``; a dead session closes it with 4001 and the reason, an
  expired access token with 4002 unless the client sent a fresh one (``{"type": "auth"}``)
  in time; changed sites re-filter its subscriptions at once.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from engine.auth.bearer import TokenCheck
from engine.auth.cache import ALL, API_KEY, SESSION, USER
from engine.bus import LiveValue

from . import websocket as wsx
from .access import PatternRefused, parse_patterns, tag_visible
from .client import Client, dumps
from .records import MAX_IDS, RecordAccess, RecordEvent, RecordFeed
from .service import LiveTags

log = logging.getLogger(__name__)

#: a socket that does not authenticate within this many seconds is closed
AUTH_TIMEOUT = 10.0
#: a socket whose send buffer stays full this long is dropped (4008)
SLOW_SECONDS = 10.0
#: changes arriving within this window go out together (latest value per tag wins)
BATCH_SECONDS = 0.02
ALARMS = "alarms"

Checker = Callable[[str, bool], TokenCheck]


class Group:
    """Sockets with the same subscribed tags whose users see the same sites: their values
    are filtered, checked and encoded once."""

    __slots__ = ("clients", "key", "paths", "viewer")

    def __init__(self, key: Any, paths: frozenset[str], viewer: Any) -> None:
        self.key = key
        self.paths = paths
        #: any member's principal: ``tag_visible`` depends only on the sites (the key)
        self.viewer = viewer
        self.clients: set[Client] = set()


class Hub:
    """The event loop, the sockets of this process and their subscriptions."""

    def __init__(self, live: LiveTags, check: Checker, *, max_total: int = 4000,
                 max_per_user: int = 32, recheck: float = 2.0,
                 clock: Callable[[], float] = time.time,
                 events: Callable[[], Any] = lambda: None,
                 api_context: Callable[[], Any] = lambda: None) -> None:
        self.live = live
        #: the API's context (entities, tables, engine) for record events, None without one
        self.api_context = api_context
        self.records: RecordAccess | None = None
        self.feed: RecordFeed | None = None
        self.by_entity: dict[str, set[Client]] = {}
        self._rec_pending: list[RecordEvent] = []
        self._rec_lock = threading.Lock()
        self._rec_due = False
        #: a scope check is running: batches wait for it, so events keep their order
        self._rec_busy = False
        self.check = check
        #: the event channels (``engine.bus.events.EventHub``) when alarms run, else None
        self.events = events
        #: epoch seconds by the auth state's clock (token and session expiry)
        self.clock = clock
        self.max_total = max_total
        self.max_per_user = max_per_user
        self.recheck = max(0.2, recheck)
        self.clients: set[Client] = set()
        self.by_user: dict[int, set[Client]] = {}
        self.by_tag: dict[str, set[Group]] = {}
        self.groups: dict[Any, Group] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=4,
                                                           thread_name_prefix="ws-auth")
        self._sub: Any = None
        self._resolved: dict[Any, frozenset[str]] = {}
        self._pending: list[LiveValue] = []
        self._pending_lock = threading.Lock()
        self._flush_due = False
        self.delivered = 0

    # -- lifecycle (any thread)
    def start(self) -> None:
        """Start the loop thread and the bus subscription (idempotent)."""
        with self._start_lock:
            if self.loop is not None:
                return
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def run() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.call_later(self.recheck, self._tick)
                try:
                    loop.run_forever()
                finally:
                    for c in list(self.clients):
                        if c.transport is not None:
                            c.transport.abort()
                    loop.run_until_complete(asyncio.sleep(0))
                    loop.close()

            self._thread = threading.Thread(target=run, daemon=True, name="campo-ws-loop")
            self._thread.start()
            ready.wait(10)
            self.loop = loop
            self._sub = self.live.bus.subscribe(["**"], self._from_bus)
            ctx = self.api_context()
            if ctx is not None:
                self.records = RecordAccess(ctx)
                self.feed = RecordFeed(ctx.engine, self._records_in).start()
                if not self.feed.wait_ready(10):
                    log.warning("record events: not listening yet")

    def stop(self) -> None:
        """Close every socket (1001) and stop the loop."""
        loop = self.loop
        if loop is None:
            return
        if self._sub is not None:
            self._sub.close()
        if self.feed is not None:
            self.feed.stop()

        def shut() -> None:
            for c in list(self.clients):
                c.close(wsx.GOING_AWAY, "server shutting down")
            loop.call_later(0.2, loop.stop)

        loop.call_soon_threadsafe(shut)
        if self._thread is not None:
            self._thread.join(5)
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.loop = None

    def full(self) -> bool:
        return len(self.clients) >= self.max_total

    def adopt(self, sock: Any, token: str | None, peer: str | None) -> None:
        """Serve an upgraded connection (called from the WSGI thread that took it over)."""
        self.start()
        assert self.loop is not None

        async def attach() -> None:
            assert self.loop is not None
            await self.loop.connect_accepted_socket(lambda: Client(self, token, peer),
                                                    sock=sock)

        asyncio.run_coroutine_threadsafe(attach(), self.loop)

    def invalidated(self, kind: str, ident: Any) -> None:
        """Credential cache listener (any thread): re-check the sockets it concerns."""
        loop = self.loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._recheck_where, kind, ident)

    # -- on the loop
    def attached(self, c: Client) -> None:
        if len(self.clients) >= self.max_total:
            c.close(wsx.TRY_LATER, f"server full ({self.max_total} live connections)")
            return
        self.clients.add(c)
        if c.token:
            self._authenticate(c, c.token, first=True)
        else:
            assert self.loop is not None
            self.loop.call_later(AUTH_TIMEOUT, self._auth_deadline, c)

    def detached(self, c: Client) -> None:
        self.clients.discard(c)
        self._unwatch_records(c, list(c.records))
        if c.alarm_sub is not None:
            c.alarm_sub.close()
            c.alarm_sub = None
        self._unindex(c)
        if c.principal is not None:
            mine = self.by_user.get(c.principal.user_id)
            if mine is not None:
                mine.discard(c)
                if not mine:
                    del self.by_user[c.principal.user_id]

    def _auth_deadline(self, c: Client) -> None:
        if c.principal is None and not c.checking and not c.closed:
            c.close(wsx.POLICY, "authentication required")

    def _authenticate(self, c: Client, token: str, *, first: bool, fresh: bool = False,
                      renewal: bool = False) -> None:
        self._check_group([c], token, first=first, fresh=fresh, renewal=renewal)

    def _check_group(self, group: list[Client], token: str, *, first: bool,
                     fresh: bool, renewal: bool = False) -> None:
        """Check ``token`` once (in a worker thread) and apply the answer to ``group``."""
        for c in group:
            c.checking = True
        assert self.loop is not None
        fut = self.loop.run_in_executor(self._pool, self.check, token, fresh)

        def done(f: asyncio.Future[Any]) -> None:
            for c in group:
                self._checked(c, token, first, f, renewal)
                if c.pending_auth is not None and not c.closed and not c.checking:
                    pending, c.pending_auth = c.pending_auth, None
                    self._authenticate(c, pending, first=c.principal is None, fresh=True,
                                       renewal=c.principal is not None)

        fut.add_done_callback(done)

    def _checked(self, c: Client, token: str, first: bool, fut: asyncio.Future[Any],
                 renewal: bool = False) -> None:
        c.checking = False
        if c.closed:
            return
        try:
            result: TokenCheck = fut.result()
        except Exception:  # the database may be down: keep the socket, try again later
            log.exception("WebSocket credential check failed")
            if first:
                c.close(wsx.TRY_LATER, "cannot check the credential now; try again later")
            return
        p = result.principal
        if p is None:
            if renewal and c.principal is not None:  # a bad new token: keep the current one
                c.error(401, f"authentication failed: {result.reason}; the current token "
                             "stays in use until it expires")
            elif first:
                c.close(wsx.POLICY, "authentication required" if result.reason is None
                        else f"authentication failed: {result.reason}")
            elif result.expired:
                c.close(wsx.TOKEN_EXPIRED, "token expired; reconnect with a new token")
            else:
                c.close(wsx.SESSION_ENDED, result.reason or "session ended")
            return
        if c.principal is not None and p.user_id != c.principal.user_id:
            c.close(wsx.POLICY, "a socket cannot change user")
            return
        if c.principal is None:  # first success: limits, then ready
            mine = self.by_user.setdefault(p.user_id, set())
            if len(mine) >= self.max_per_user:
                c.close(wsx.TOO_MANY, f"too many live connections for {p.username} "
                                      f"(limit {self.max_per_user})")
                return
            mine.add(c)
            c.token, c.principal, c.expires = token, p, result.expires
            c.vis_key = (p.all_sites, p.sites)
            c.send({"type": "ready", "user": p.username,
                    "expires_in": max(0, int(result.expires - self.clock()))})
            early, c.early = c.early, []
            for text in early:
                self.on_message(c, text)
            return
        changed = (p.sites, p.all_sites) != (c.principal.sites, c.principal.all_sites)
        renewed = token != c.token
        c.token, c.principal, c.expires = token, p, result.expires
        c.vis_key = (p.all_sites, p.sites)
        if renewed:
            c.send({"type": "reauthenticated",
                    "expires_in": max(0, int(result.expires - self.clock()))})
        if changed and c.patterns:
            self._subscribe(c, c.patterns, c.pattern_texts, initial=False)

    def _recheck_where(self, kind: str, ident: Any) -> None:
        attr = {SESSION: "session_id", USER: "user_id", API_KEY: "api_key_id"}.get(kind)
        groups: dict[str, list[Client]] = {}
        for c in self.clients:
            p = c.principal
            if p is None or c.token is None or c.closed:
                continue
            if kind == ALL or (attr is not None and getattr(p, attr) == ident):
                groups.setdefault(c.token, []).append(c)
        for token, group in groups.items():
            self._check_group(group, token, first=False, fresh=True)

    def _tick(self) -> None:
        """Every ``recheck`` seconds: expiry, the cache's time bound, slow consumers."""
        assert self.loop is not None
        self.loop.call_later(self.recheck, self._tick)
        now, mono = self.clock(), time.monotonic()
        groups: dict[str, list[Client]] = {}
        for c in list(self.clients):
            if c.closed:
                continue
            if c.paused_at is not None and mono - c.paused_at > SLOW_SECONDS:
                c.close(wsx.TOO_SLOW, "too slow: not reading", abort=True)
                continue
            if c.principal is None or c.checking or c.token is None:
                continue
            if now >= c.expires:
                c.close(wsx.TOKEN_EXPIRED, "token expired; reconnect with a new token")
            else:
                groups.setdefault(c.token, []).append(c)
        for token, group in groups.items():  # one check per token; a cache hit is cheap
            self._check_group(group, token, first=False, fresh=False)

    def on_message(self, c: Client, text: str) -> None:
        try:
            msg = json.loads(text)
        except ValueError:
            c.error(400, "messages are JSON")
            return
        kind = msg.get("type") if isinstance(msg, dict) else None
        if kind == "auth":
            token = msg.get("token")
            if not isinstance(token, str) or not token:
                c.error(400, "'token' must be an access token")
            elif c.checking:
                c.pending_auth = token
            else:
                self._authenticate(c, token, first=c.principal is None, fresh=True,
                                   renewal=c.principal is not None)
            return
        if c.principal is None:
            if not c.checking:
                c.close(wsx.POLICY, "authentication required")
            elif len(c.early) < 4:
                c.early.append(text)
            else:
                c.close(wsx.POLICY, "authenticate first")
            return
        if kind == "subscribe_alarms":
            self._subscribe_alarms(c, msg)
            return
        if kind == "subscribe_records":
            self._subscribe_records(c, msg)
            return
        if kind == "unsubscribe_records":
            name = msg.get("entity")
            self._unwatch_records(c, [name] if isinstance(name, str) else list(c.records))
            c.send({"type": "unsubscribed_records", "entities": sorted(c.records)})
            return
        if kind == "unsubscribe":
            self._unindex(c)
            c.patterns, c.pattern_texts, c.paths = [], (), frozenset()
            return
        if kind != "subscribe":
            c.error(400, "expected {'type': 'subscribe', 'patterns': [...]}")
            return
        raw = msg.get("patterns") or []
        try:
            patterns = parse_patterns(raw, field="patterns")
        except PatternRefused as err:
            c.error(err.status, err.message, field=err.field)
            return
        self._subscribe(c, patterns, tuple(raw), initial=True)

    def _subscribe(self, c: Client, patterns: list[Any], texts: tuple[str, ...], *,
                   initial: bool) -> None:
        key = (texts, c.vis_key)
        paths = self._resolved.get(key)
        if paths is None:
            paths = frozenset(t.path for p in patterns
                              for t in self.live.select(c.principal, pattern=p))
            if len(self._resolved) > 4096:
                self._resolved.clear()
            self._resolved[key] = paths
        self._unindex(c)
        c.patterns, c.pattern_texts, c.paths = patterns, texts, paths
        gkey = (paths, c.vis_key)
        group = self.groups.get(gkey)
        if group is None:
            group = self.groups[gkey] = Group(gkey, paths, c.principal)
            for path in paths:
                self.by_tag.setdefault(path, set()).add(group)
        group.clients.add(c)
        c.group = group
        if initial:
            c.send({"type": "subscribed", "patterns": list(texts), "tags": len(paths)})
        tags = self.live.tags.tags if self.live.tags is not None else {}
        current = [v for v in self.live.bus.latest(sorted(paths)).values()
                   if tag_visible(c.principal, tags.get(v.tag))]
        if current:
            c.send_values(current)

    def _subscribe_alarms(self, c: Client, msg: dict[str, Any]) -> None:
        """Alarm transitions of the user's sites (optionally only ``sites``) to ``c``."""
        if c.alarm_sub is not None:
            c.alarm_sub.close()
            c.alarm_sub = None
        channels = self.events()
        if channels is None:
            c.error(503, "no alarm events in this process")
            return
        only = msg.get("sites")
        wanted = set(only) if isinstance(only, list) else None
        loop = self.loop
        assert loop is not None

        def to_socket(events: list[dict[str, Any]]) -> None:  # on the loop
            if c.closed or c.principal is None:
                return
            shown = [e for e in events if c.principal.may_see_site(e.get("site"))
                     and (wanted is None or e.get("site") in wanted)]
            if shown:
                c.send_event({"type": "alarms", "events": shown})

        c.alarm_sub = channels.subscribe(
            ALARMS, lambda events: loop.call_soon_threadsafe(to_socket, list(events)))
        c.send({"type": "subscribed_alarms"})

    # -- record events
    def _subscribe_records(self, c: Client, msg: dict[str, Any]) -> None:
        """Watch the committed writes of entities ``c``'s user may read (see module doc)."""
        access = self.records
        if access is None:
            c.error(503, "no record events in this process")
            return
        names = msg["entities"] if "entities" in msg else [msg.get("entity")]
        if not isinstance(names, list) or not names or len(names) > 32 \
                or not all(isinstance(n, str) for n in names):
            c.error(400, "'entity' must name an entity ('module.entity'); 'entities' a list "
                         "of at most 32", field="entity")
            return
        for name in names:
            if not access.readable(c.principal, name):  # as /api/meta: not revealed
                c.error(404, f"unknown entity '{name}'", field="entity")
                return
        ids = msg.get("ids") or []
        if not isinstance(ids, list) or len(ids) > MAX_IDS or len(names) != 1 and ids \
                or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            c.error(400, f"'ids' must be a list of at most {MAX_IDS} record ids of one "
                         "entity", field="ids")
            return
        for name in names:
            c.records.setdefault(name, set())
            self.by_entity.setdefault(name, set()).add(c)
        reply = {"type": "subscribed_records", "entities": sorted(c.records)}
        if not ids:
            c.send(reply)
            return
        assert self.loop is not None
        principal, name = c.principal, names[0]
        fut = self.loop.run_in_executor(self._pool, access.visible, principal, name, ids)

        def done(f: asyncio.Future[set[int]]) -> None:
            if c.closed or name not in c.records:
                return
            try:
                seen = c.records[name]
                if len(seen) > 10 * MAX_IDS:
                    seen.clear()
                seen.update(f.result())
            except Exception:  # the database may be down: deletes of them are not told
                log.exception("record events: checking ids failed")
            c.send(reply)

        fut.add_done_callback(done)

    def _unwatch_records(self, c: Client, names: list[str]) -> None:
        for name in names:
            c.records.pop(name, None)
            subs = self.by_entity.get(name)
            if subs is not None:
                subs.discard(c)
                if not subs:
                    del self.by_entity[name]

    def _records_in(self, events: list[RecordEvent]) -> None:
        """Feed callback (any thread): queue, and flush within BATCH_SECONDS."""
        loop = self.loop
        if loop is None or not self.by_entity:
            return
        with self._rec_lock:
            self._rec_pending.extend(events)
            if self._rec_due:
                return
            self._rec_due = True
        loop.call_soon_threadsafe(loop.call_later, BATCH_SECONDS, self._records_flush)

    def _records_flush(self) -> None:
        if self._rec_busy:  # the running check's done() flushes again
            return
        with self._rec_lock:
            events, self._rec_pending, self._rec_due = self._rec_pending, [], False
        access = self.records
        if access is None or self.loop is None or not events:
            return
        per_entity: dict[str, dict[int, RecordEvent]] = {}
        #: records written, then deleted in this batch: whether they were in a user's scope
        #: in between is unknown, so scoped users are not told of those deletes
        mixed: set[tuple[str, int]] = set()
        for e in events:  # the last event of a record wins; a create stays a create
            got = per_entity.setdefault(e.entity, {})
            prev = got.get(e.id)
            if prev is not None and prev.op == "create" and e.op == "update":
                e = RecordEvent(e.entity, e.id, e.version, "create")
            if prev is not None and prev.op != "delete" and e.op == "delete":
                mixed.add((e.entity, e.id))
            got[e.id] = e
        # one check per entity and distinct user (roles and sites decide the scope)
        jobs: dict[tuple[Any, ...], tuple[Any, str, list[Client]]] = {}
        for entity in per_entity:
            for c in self.by_entity.get(entity, ()):
                p = c.principal
                if c.closed or p is None or not access.readable(p, entity):
                    continue
                key = (entity, p.user_id, p.roles, p.sites)
                jobs.setdefault(key, (p, entity, []))[2].append(c)
        if not jobs:
            return
        self._rec_busy = True

        def check() -> list[tuple[str, list[Client], bool, set[int]]]:
            out = []
            for p, entity, clients in jobs.values():
                changes = per_entity[entity]
                scoped = access.scoped(p, entity)
                alive = [i for i, e in changes.items() if e.op != "delete"]
                out.append((entity, clients, scoped, access.visible(p, entity, alive)))
            return out

        def done(f: asyncio.Future[list[tuple[str, list[Client], bool, set[int]]]]) -> None:
            self._rec_busy = False
            with self._rec_lock:  # what came meanwhile (a flush skipped while busy too)
                again = bool(self._rec_pending)
                if again:
                    self._rec_due = True
            if again and self.loop is not None:
                self.loop.call_soon(self._records_flush)
            try:
                checked = f.result()
            except Exception:  # the database may be down: tell nobody rather than everybody
                log.exception("record events: scope check failed; %d events not sent",
                              len(events))
                return
            for entity, clients, scoped, shown in checked:
                changes = per_entity[entity]
                for c in clients:
                    seen = c.records.get(entity)
                    if c.closed or seen is None:
                        continue
                    out = [e.to_json() for e in changes.values()
                           if e.id in shown or e.op == "delete" and (not scoped or (
                               e.id in seen and (entity, e.id) not in mixed))]
                    for e in changes.values():  # known: in the user's scope as of now
                        if e.op == "delete" or e.id not in shown:
                            seen.discard(e.id)
                        elif len(seen) < 10 * MAX_IDS:
                            seen.add(e.id)
                    if out:
                        c.send_event({"type": "records", "events": out})

        self.loop.run_in_executor(self._pool, check).add_done_callback(done)

    def _unindex(self, c: Client) -> None:
        group, c.group = c.group, None
        if group is None:
            return
        group.clients.discard(c)
        if group.clients:
            return
        del self.groups[group.key]
        for path in group.paths:
            subs = self.by_tag.get(path)
            if subs is not None:
                subs.discard(group)
                if not subs:
                    del self.by_tag[path]

    def _from_bus(self, values: Sequence[LiveValue]) -> None:
        """Bus callback (the publisher's thread): queue, and flush within BATCH_SECONDS."""
        loop = self.loop
        if loop is None or not self.by_tag:
            return
        with self._pending_lock:
            self._pending.extend(values)
            if self._flush_due:
                return
            self._flush_due = True
        loop.call_soon_threadsafe(loop.call_later, BATCH_SECONDS, self._flush)

    def _flush(self) -> None:
        with self._pending_lock:
            values, self._pending, self._flush_due = self._pending, [], False
        latest = {v.tag: v for v in values}  # a tag changed twice in the window: last wins
        self._dispatch(list(latest.values()))

    def _dispatch(self, values: list[LiveValue]) -> None:
        """Send a batch of changes to every socket subscribed to them (see module doc)."""
        per_group: dict[Group, list[LiveValue]] = {}
        by_tag = self.by_tag
        for v in values:
            subs = by_tag.get(v.tag)
            if subs:
                for g in subs:
                    got = per_group.get(g)
                    if got is None:
                        per_group[g] = [v]
                    else:
                        got.append(v)
        if not per_group:
            return
        tags = self.live.tags.tags if self.live.tags is not None else {}
        for g, hits in per_group.items():
            # every delivered value is checked against the sites the group's users see now
            shown = [v for v in hits if tag_visible(g.viewer, tags.get(v.tag))]
            if not shown:
                continue
            data = wsx.frame(dumps({"type": "values", "values": [v.to_json() for v in shown]}))
            for c in g.clients:
                c.deliver(data, shown)
            self.delivered += len(shown) * len(g.clients)

    def stats(self) -> dict[str, int]:
        """Open sockets, users and values delivered so far (this process)."""
        return {"sockets": len(self.clients), "users": len(self.by_user),
                "delivered": self.delivered}
