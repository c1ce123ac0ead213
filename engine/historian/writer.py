"""The historian as a runtime sink: ``publish`` journals, a writer thread stores.

``publish(values)`` runs on the runtime's thread: it turns the batch into rows, appends them
to the spool (one ``write()``: the kernel holds them even if the process is killed) and, in
the normal *direct* mode, hands them to the writer thread in memory. It never touches the
database, so a slow or absent database never delays a poll.

The writer thread stores what it holds every ``flush_seconds`` or ``batch`` samples
(``fsync`` of the spool first, then one transaction, then the spool is acknowledged). When
the database fails, or falls behind by more than ``max_pending`` samples, the writer keeps
what it holds, switches to *replay* mode (``publish`` then only journals) and retries with
a growing pause; once stored, it reads the spool in order until it catches up with
``publish`` and switches back. On start it replays whatever the spool holds unacknowledged
(a crash, a reboot): the store skips samples it already has.

Every hour (and once at start) it also runs retention and, on PostgreSQL, partition
creation and compaction; every few seconds it saves its figures for ``/api/history/status``.
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa

from .catalog import Catalog, TagPolicy
from .ingest import Ingest, PathRow
from .samples import SampleLike, iso, to_us
from .spool import Position, Reader, Spool
from .store import Store

log = logging.getLogger(__name__)

DIRECT, REPLAY = "direct", "replay"
#: a writer behind takes up to this many batches in one transaction (fewer rollup rows per
#: sample: a minute bucket is written once, not once per second of it)
BACKLOG_BATCHES = 4
#: failures of one batch with a data error (not an outage) before it is skipped
POISON_STRIKES = 5
#: errors that say "this data cannot be stored" (not an outage): such a batch is skipped,
#: counted and logged after POISON_STRIKES tries; every other error is retried for ever
DATA_ERRORS: tuple[type[BaseException], ...] = (
    sa.exc.DataError, struct.error, ValueError, TypeError, OverflowError)


def is_data_error(exc: BaseException) -> bool:
    """Whether ``exc`` says the data cannot be stored. psycopg's DataError counts too; it is
    looked up only when psycopg is loaded (a PostgreSQL store), so SQLite sites never import
    it (8.5 MB of a web process's memory)."""
    if isinstance(exc, DATA_ERRORS):
        return True
    psycopg = sys.modules.get("psycopg")
    return psycopg is not None and isinstance(exc, psycopg.DataError)
#: timestamps within this many µs at or before a tag's last one are moved just after it
#: (two changes of one tag in the same microsecond, e.g. a quality change without a new
#: source timestamp, both kept)
SAME_INSTANT_US = 1000


class Historian:
    """A runtime sink storing every published change (see the module docstring)."""

    def __init__(self, store: Store | Callable[[], Store], spool: Spool,
                 policies: Sequence[TagPolicy] = (), *,
                 batch: int = 50_000, flush_seconds: float = 1.0,
                 max_pending: int | None = None, rollup_1m_days: float = 35.0,
                 maintenance_seconds: float = 3600.0, node: str | None = None,
                 retry_max_seconds: float = 10.0,
                 clock: Callable[[], float] = time.time) -> None:
        #: the store; a factory is called (and retried) by the writer thread, so that a
        #: historian starts while its database is away
        self.store: Store | None = store if isinstance(store, Store) else None
        self._make_store = store if not isinstance(store, Store) else None
        self.spool = spool
        self.policies = list(policies)
        self.catalog: Catalog | None = None
        self.ingest: Ingest | None = None
        self.batch = batch
        self.flush_seconds = flush_seconds
        self.max_pending = max_pending or 8 * batch
        self.rollup_1m_days = rollup_1m_days
        self.maintenance_seconds = maintenance_seconds
        self.retry_max_seconds = retry_max_seconds
        self.node = node or f"{socket.gethostname()}:{spool.dir}"
        self.clock = clock
        self.mode = REPLAY  # until the spool's unacknowledged part is stored
        self._lock = threading.Condition()
        self._pending: list[tuple[list[PathRow], Position]] = []
        self._pending_n = 0
        self._last_ts: dict[str, int] = {}
        self._thread: threading.Thread | None = None
        self._stop = False
        self._ready = False
        # figures
        self.published = 0
        self.stored = 0
        #: samples the database refused again and again (a data error, not an outage)
        self.rejected = 0
        self._data_error = False
        self.last_flush: float | None = None
        self.last_error: str | None = None
        self.failing_since: float | None = None
        self._oldest: int | None = None
        self._rates: collections.deque[tuple[float, int]] = collections.deque(maxlen=64)
        self._saved_at = 0.0
        self._maintained_at = 0.0
        self.flushed = threading.Event()

    # ------------------------------------------------------------------ sink protocol

    def start(self) -> None:
        """Start the writer thread (the database need not be reachable yet)."""
        if self._thread is not None:
            return
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="campo-historian", daemon=True)
        self._thread.start()

    def publish(self, values: Sequence[SampleLike]) -> None:
        """Journal a batch of runtime values (runtime thread; no database access)."""
        if not values:
            return
        rows: list[PathRow] = []
        add = rows.append
        last = self._last_ts
        # the values of one scan mostly share their timestamp object: convert each once
        seen_dt: object = None
        seen_us = 0
        seen_q: object = None
        seen_qi = 0
        for v in values:
            path = v.tag
            when = v.ts
            if when is not seen_dt:
                seen_dt, seen_us = when, round(when.timestamp() * 1_000_000)
            ts = seen_us
            prev = last.get(path)
            if prev is not None and prev - SAME_INSTANT_US < ts <= prev:
                ts = prev + 1
            if prev is None or ts > prev:
                last[path] = ts
            quality = v.quality
            if quality is not seen_q:
                seen_q, seen_qi = quality, int(quality)
            value = v.value
            if type(value) is str:
                add((path, ts, None, value, seen_qi))
            else:
                add((path, ts, value, None, seen_qi))
        with self._lock:
            pos = self.spool.append(rows)
            self.published += len(rows)
            if self.mode == DIRECT:
                self._pending.append((rows, pos))
                self._pending_n += len(rows)
                self.spool.own(pos)
                if self._pending_n > self.max_pending:
                    log.warning("history: the database falls behind (%d samples waiting); "
                                "journaling only until it catches up", self._pending_n)
                    self.mode = REPLAY
                if self._pending_n >= self.batch:
                    self._lock.notify()

    def stop(self, timeout: float = 10.0) -> None:
        """Store what can be stored within ``timeout``, then stop (the spool keeps the rest)."""
        with self._lock:
            self._stop = True
            self._lock.notify()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.spool.close()

    # ------------------------------------------------------------------ writer thread

    def _run(self) -> None:
        reader: Reader | None = None
        inflight: tuple[list[PathRow], Position] | None = None
        pause = 0.0
        strikes = 0
        while True:
            with self._lock:
                if pause:
                    self._lock.wait(pause)
                elif not self._stop and self.mode == DIRECT and self._pending_n < self.batch:
                    self._lock.wait(self.flush_seconds)
                stopping = self._stop
                if inflight is None and self._pending:
                    batch: list[PathRow] = []
                    pos = self._pending[-1][1]
                    while self._pending and len(batch) < BACKLOG_BATCHES * self.batch:
                        rows, pos = self._pending.pop(0)
                        batch += rows
                    self._pending_n -= len(batch)
                    inflight = (batch, pos)
            if stopping and pause:
                break
            if not self._ready and not self._setup():
                pause = self._backoff(pause)
                if stopping:
                    break
                continue
            if inflight is None and self.mode == REPLAY and not stopping:
                if reader is None:
                    reader = Reader(self.spool, self.spool.owned if self.spool.owned >
                                    self.spool.acked else self.spool.acked)
                rows, pos = reader.read(BACKLOG_BATCHES * self.batch)
                if rows:
                    inflight = (rows, pos)
                elif self._caught_up(reader):
                    reader = None
            if inflight is not None:
                outcome = self._store(*inflight)
                if outcome is not False:
                    inflight = None
                    pause = 0.0
                    strikes = 0
                    if reader is not None and self._caught_up(reader):
                        reader = None
                elif self._poison(strikes := strikes + 1, inflight):
                    inflight = None
                    strikes = 0
                else:
                    with self._lock:
                        self.mode = REPLAY
                    pause = self._backoff(pause)
                    if stopping:
                        break
                    continue
            elif stopping and not self._pending:
                break
            now = self.clock()
            if now - self._maintained_at >= self.maintenance_seconds:
                self._maintain(now)
            if now - self._saved_at >= 5.0:
                self._save_status(now)
            self.flushed.set()
        if self._ready:
            self._save_status(self.clock())  # the last figures, for /api/history/status

    def _caught_up(self, reader: Reader) -> bool:
        """Back to direct writes when the replay has read everything journaled so far."""
        with self._lock:
            if reader.pos < self.spool.end():
                return False
            if self.mode == REPLAY:
                log.info("history: spool replayed, back to direct writes")
            self.mode = DIRECT
            self.spool.own(reader.pos)
            self.spool.ack(self.spool.owned)
            return True

    def _poison(self, strikes: int, inflight: tuple[list[PathRow], Position]) -> bool:
        """Whether to give up on a batch that failed ``strikes`` times with a data error."""
        if not self._data_error or strikes < POISON_STRIKES:
            return False
        rows, pos = inflight
        self.rejected += len(rows)
        log.error("history: %d sample(s) refused %d times by the database (%s); skipped "
                  "(%d refused in all)", len(rows), strikes, self.last_error, self.rejected)
        self.spool.ack(pos)
        return True

    def _backoff(self, pause: float) -> float:
        return min(self.retry_max_seconds, max(0.5, pause * 2))

    def _setup(self) -> bool:
        try:
            if self.store is None:
                assert self._make_store is not None
                self.store = self._make_store()
            if self.catalog is None or self.ingest is None:
                self.catalog = Catalog(self.store)
                self.ingest = Ingest(self.store, self.catalog)
            self.store.create()
            if self.policies:
                self.catalog.sync(self.policies)
            else:
                self.catalog.load()
        except Exception as exc:
            self._failed(exc, "setting up the history tables")
            return False
        self._ready = True
        self._maintained_at = 0.0
        return True

    def _store(self, rows: list[PathRow], pos: Position) -> bool:
        self._oldest = min((r[1] for r in rows), default=None)
        assert self.ingest is not None
        try:
            self.spool.sync()
            self.ingest.write(rows)
        except Exception as exc:
            self.ingest.forget()
            self._refresh()
            self._data_error = is_data_error(exc)
            self._failed(exc, f"storing {len(rows)} sample(s)")
            return False
        self.spool.ack(pos)
        now = self.clock()
        self.stored += len(rows)
        self._data_error = False
        self.last_flush = now
        self._rates.append((now, len(rows)))
        self._oldest = None
        if self.failing_since is not None:
            log.info("history: database writes recovered after %.0f s",
                     now - self.failing_since)
            self.failing_since = None
            self.last_error = None
        return True

    def _refresh(self) -> None:
        try:
            refresh = getattr(self.store, "refresh", None)
            if refresh is not None:
                refresh()
        except Exception:  # the database is away; the next attempt refreshes again
            pass

    def _failed(self, exc: Exception, doing: str) -> None:
        text = f"{exc.__class__.__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}"
        if self.failing_since is None:
            self.failing_since = self.clock()
            log.error("history: %s failed (%s); samples stay in the spool at %s and are "
                      "retried", doing, text, self.spool.dir)
        self.last_error = text

    def _maintain(self, now: float) -> None:
        self._maintained_at = now
        assert self.store is not None and self.catalog is not None
        try:
            tags = list(self.catalog.tags.values())
            us = round(now * 1_000_000)
            self.store.maintain(tags, us)
            gone = self.store.apply_retention(tags, us, self.rollup_1m_days)
            if gone:
                log.info("history: retention removed %d sample(s)", gone)
        except Exception as exc:  # maintenance is retried next time
            log.warning("history: maintenance failed: %s", exc)

    def _save_status(self, now: float) -> None:
        self._saved_at = now
        if self.store is None:
            return
        try:
            self.store.save_status(self.node, self.status(),
                                   dt.datetime.fromtimestamp(now, dt.UTC))
        except Exception:  # figures are best effort
            log.debug("history: saving status failed", exc_info=True)

    # ------------------------------------------------------------------ figures

    def status(self) -> dict[str, Any]:
        """What ``GET /api/history/status`` shows for this writer."""
        now = self.clock()
        recent = [(t, n) for t, n in self._rates if now - t <= 10.0]
        rate = sum(n for _t, n in recent) / 10.0 if recent else 0.0
        with self._lock:
            oldest = self._oldest
            if oldest is None and self._pending:
                oldest = min(r[1] for r in self._pending[0][0])
            pending = self._pending_n
            mode = self.mode
        state = ("starting" if not self._ready and self.failing_since is None
                 else "database unreachable" if self.failing_since is not None
                 else "replaying" if mode == REPLAY else "writing")
        return {
            "node": self.node, "backend": None if self.store is None else self.store.kind,
            "state": state,
            "spool_bytes": self.spool.bytes(), "spool_unstored_bytes": self.spool.pending_bytes(),
            "spool_bound_bytes": self.spool.max_bytes, "dropped_samples": self.spool.dropped,
            "oldest_unflushed": None if oldest is None else iso(oldest),
            "last_flush": None if self.last_flush is None else iso(round(self.last_flush * 1e6)),
            "rows_per_second": round(rate, 1), "published": self.published,
            "stored": self.stored, "refused": self.rejected, "waiting_in_memory": pending,
            "last_error": self.last_error,
        }

    def wait_stored(self, timeout: float = 30.0) -> bool:
        """Block until everything published so far is stored (tests, tools)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                done = self.mode == DIRECT and self.spool.acked >= self.spool.end()
                self._lock.notify()
            if done:
                return True
            time.sleep(0.02)
        return False


def now_us() -> int:
    """The current time in µs (UTC)."""
    return to_us(dt.datetime.now(dt.UTC))
