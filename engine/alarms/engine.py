"""The alarm engine: compiled rules evaluated on every tag change, timers, actions, events.

:class:`AlarmEngine` is a sink of the SCADA runtime (``name``, ``start``, ``publish``,
``stop``: the runtime queues batches for it off the scan path) without importing
:mod:`engine.scada`: a sample is anything with ``tag``, ``value``, ``quality`` (0 bad,
1 uncertain, 2 good, as :class:`engine.scada.types.Quality`), ``ts`` and ``reason``.

Per batch it evaluates only the alarms the changed tags feed, runs the timers that are due
(delays, shelve expiry, re-alarm), writes changed states and journal rows (and the
notifications the transitions cause, through ``outbox``) in one transaction, and then hands
the events to its listeners (bus, MQTT). A listener or a notification channel that fails
never stops evaluation. With ``store=None`` it keeps everything in memory (replay, bench).

Example::

    engine = AlarmEngine(compile_alarms(load_tags(".")), AlarmStore(db))
    engine.listeners.append(lambda events: print(events))
    engine.process(batch)                  # or: runtime.add_sink(engine)
    engine.act("acknowledge", ["sim_pad.w1.pip_low.lo"], user="ana", roles={"operator"})
"""

from __future__ import annotations

import collections
import datetime as dt
import heapq
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from engine.expr import ExprError

from . import state as sm
from .compile import CompiledAlarm, CompiledAlarms
from .events import event_of
from .state import ActionRefused, AlarmState, State, Transition
from .store import AlarmStore

log = logging.getLogger(__name__)

BAD, UNCERTAIN, GOOD = 0, 1, 2
#: the pipeline's reason for a tag no device answered yet: unknown, not bad
NOT_READ = "not read yet"
#: seconds between two deletions of journal rows past the retention
PRUNE_EVERY = 3600.0
#: operator actions and the permission (``roles:`` key) each needs
ACTIONS: dict[str, str] = {
    "acknowledge": "acknowledge", "shelve": "shelve", "unshelve": "shelve",
    "out_of_service": "out_of_service", "in_service": "out_of_service", "reset": "reset",
}


class Sample(Protocol):
    """A tag change as the runtime's sinks get it."""

    @property
    def tag(self) -> str: ...

    @property
    def value(self) -> Any: ...

    @property
    def quality(self) -> Any: ...

    @property
    def ts(self) -> dt.datetime: ...

    @property
    def reason(self) -> str | None: ...


Listener = Callable[[list[dict[str, Any]]], None]


class RecentHistory(Protocol):
    """Stored samples of some tags over a period, oldest first, starting with each tag's
    value held at ``start`` (:class:`engine.alarms.replay.HistorianReader`)."""

    def samples(self, tags: Sequence[str], start: dt.datetime, end: dt.datetime
                ) -> Iterable[Sample]: ...


class Outbox(Protocol):
    """Where the engine hands events that may notify someone (in its transaction)."""

    def enqueue(self, conn: Any, events: Sequence[dict[str, Any]]) -> object: ...


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class AlarmEngine:
    """Every alarm of a project: states, evaluation, timers, actions and events."""

    name = "alarms"

    def __init__(self, compiled: CompiledAlarms, store: AlarmStore | None = None, *,
                 clock: Callable[[], dt.datetime] = _utcnow, outbox: Outbox | None = None,
                 timer_period: float = 0.2,
                 history: Callable[[], RecentHistory | None] | None = None) -> None:
        self.compiled = compiled
        #: where :meth:`load` finds the recent samples of the rate-of-change tags (the
        #: historian), called once; None or a failure: the windows fill from live samples
        self.history = history
        self.store = store
        self.clock = clock
        self.outbox = outbox
        self.timer_period = timer_period
        self.listeners: list[Listener] = []
        self.states: dict[str, AlarmState] = {}
        self.values: dict[str, Any] = {}
        self.quality: dict[str, int] = {}
        self._history: dict[str, collections.deque[tuple[float, float]]] = {}
        #: rate-of-change tags and how far back their window reaches (the longest ``per``)
        self._rate_tags: dict[str, float] = {}
        for ca in compiled.alarms.values():
            if ca.rule.rate and ca.rule.tag:
                self._rate_tags[ca.rule.tag] = max(self._rate_tags.get(ca.rule.tag, 0.0),
                                                   ca.rule.rate[1])
        self._due: list[tuple[dt.datetime, str]] = []
        #: rate alarms to evaluate again when their window moves past a change (a steady
        #: tag sends no sample: its rate falls back to 0 with time alone)
        self._rate_due: list[tuple[dt.datetime, str]] = []
        self._rate_next: dict[str, dt.datetime] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.evaluations = 0
        self.failures = 0
        #: seconds between two applications of the journal's retention (the first: at start)
        self.prune_every = PRUNE_EVERY
        #: journal rows deleted past the retention since start
        self.pruned = 0
        self._loaded = False
        #: transitions and states a failed commit could not store (retried first)
        self._unsaved: list[tuple[Transition, CompiledAlarm]] = []
        self._unsaved_dirty: dict[str, CompiledAlarm] = {}

    # ------------------------------------------------------------------ life cycle

    def load(self) -> None:
        """Restore the stored states (once); alarms never stored start normal."""
        if self._loaded:
            return
        stored = self.store.load() if self.store is not None else {}
        for path in self.compiled.alarms:
            self.states[path] = stored.get(path) or AlarmState(path)
        for path, st in self.states.items():
            self._schedule(path, st)
        self._loaded = True
        kept = sum(1 for p in stored if p in self.compiled.alarms)
        log.info("alarms: %d alarm(s), %d state(s) restored", len(self.states), kept)
        if self.history is not None and self._rate_tags:
            try:
                reader = self.history()
                if reader is not None:
                    now = self.clock()
                    keep = max(self._rate_tags.values())
                    n = self.seed_rates(reader.samples(
                        sorted(self._rate_tags), now - dt.timedelta(seconds=keep), now))
                    log.info("alarms: rate-of-change windows seeded with %d stored sample(s)",
                             n)
                    for path, ca in self.compiled.alarms.items():
                        if ca.rule.rate is not None:  # a steady tag clears by time alone
                            self._schedule_rate(path, ca.rule.tag or "", ca.rule.rate[1], now)
                    close = getattr(reader, "close", None)
                    if close is not None:
                        close()
            except Exception:  # the historian is away: the windows fill from live samples
                log.exception("alarms: rate-of-change windows not seeded from history")

    def seed_rates(self, samples: Iterable[Sample]) -> int:
        """Fill the rate-of-change windows with samples from before (oldest first) without
        evaluating anything; return how many were taken. A window that still does not
        reach back a whole ``per`` leaves its alarm undetermined (held) unless the change
        seen so far already passes the limit."""
        n = 0
        with self._lock:
            for s in samples:
                if s.tag in self._rate_tags and int(s.quality) != BAD and isinstance(
                        s.value, (int, float)) and not isinstance(s.value, bool):
                    hist = self._history.get(s.tag)
                    if hist and hist[-1][0] >= s.ts.timestamp():
                        continue  # already known (a live sample came first)
                    self._remember(s.tag, s.ts, float(s.value))
                    n += 1
        return n

    async def start(self) -> None:
        """Sink start: restore states and run the timers in a thread."""
        self.start_timers()

    def start_timers(self) -> None:
        """Restore states and start the timer thread (delays, shelves, re-alarms)."""
        self.load()
        if self._thread is None and self.timer_period > 0:
            self._stop.clear()
            self._thread = threading.Thread(target=self._timer_main, daemon=True,
                                            name="campo-alarm-timers")
            self._thread.start()

    async def stop(self) -> None:
        """Sink stop: end the timer thread."""
        self.stop_timers()

    def stop_timers(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def _timer_main(self) -> None:
        pruned: float | None = None  # the journal's retention: at the first tick, then hourly
        while not self._stop.wait(self.timer_period):
            try:
                self.tick()
                if self.store is not None and (
                        pruned is None or time.monotonic() - pruned >= self.prune_every):
                    pruned = time.monotonic()
                    gone = self.store.prune(self.clock())
                    self.pruned += gone
                    if gone:
                        log.info("alarm journal: %d row(s) past the retention deleted", gone)
            except Exception:  # a failing tick must not end the timers
                self.failures += 1
                log.exception("alarm timers failed")

    # ------------------------------------------------------------------ evaluation

    def publish(self, batch: Sequence[Sample]) -> None:
        """Sink publish: evaluate the alarms the batch's tags feed."""
        self.process(batch)

    def process(self, batch: Iterable[Sample], now: dt.datetime | None = None
                ) -> list[dict[str, Any]]:
        """Evaluate a batch of tag changes (and the timers due); return the events."""
        by_tag = self.compiled.by_tag
        with self._lock:
            if not self._loaded:
                self.load()
            touched: dict[str, CompiledAlarm] = {}
            last_ts: dt.datetime | None = None
            for s in batch:
                alarms = by_tag.get(s.tag)
                if alarms is None:
                    continue
                q = int(s.quality)
                if q == BAD and s.value is None and s.reason == NOT_READ:
                    continue  # nothing known yet: not bad, not good
                self.quality[s.tag] = q
                if q != BAD:
                    self.values[s.tag] = s.value
                    if s.tag in self._rate_tags and isinstance(s.value, (int, float)):
                        self._remember(s.tag, s.ts, float(s.value))
                last_ts = s.ts
                for ca in alarms:
                    touched[ca.rule.path] = ca
            ts = now or last_ts or self.clock()
            changes: list[tuple[Transition, CompiledAlarm]] = []
            dirty: dict[str, CompiledAlarm] = {}
            for path, ca in touched.items():
                self._evaluate(ca, self.states[path], ts, changes, dirty)
            self._run_timers(now or self.clock(), changes, dirty)
            return self._commit(changes, dirty)

    def tick(self, now: dt.datetime | None = None) -> list[dict[str, Any]]:
        """Run the timers that are due at ``now``."""
        with self._lock:
            if not self._loaded:
                self.load()
            changes: list[tuple[Transition, CompiledAlarm]] = []
            dirty: dict[str, CompiledAlarm] = {}
            self._run_timers(now or self.clock(), changes, dirty)
            if not changes and not dirty and not self._unsaved and not self._unsaved_dirty:
                return []
            return self._commit(changes, dirty)

    def _remember(self, tag: str, ts: dt.datetime, value: float) -> None:
        hist = self._history.setdefault(tag, collections.deque())
        t = ts.timestamp()
        hist.append((t, value))
        keep = self._rate_tags[tag]
        while len(hist) > 2 and hist[1][0] <= t - keep:
            hist.popleft()

    def _raw(self, ca: CompiledAlarm, st: AlarmState, ts: dt.datetime) -> bool | None:
        rule = ca.rule
        kind = rule.kind
        quality = self.quality
        if kind == "bad_quality":
            q = quality.get(rule.tag or "")
            return None if q is None else q == BAD
        if kind == "rate":  # judged on its window, which history may fill before a live value
            assert rule.rate is not None
            if quality.get(rule.tag or "") == BAD:
                return None
            return self._rate(rule.tag or "", rule.rate, st, ts.timestamp())
        for t in ca.needs:
            if quality.get(t, BAD) == BAD:
                return None
        values = self.values
        if kind == "analog":
            v = values.get(rule.tag or "")
            lim = rule.limit if ca.limit is None else ca.limit(values)
            if lim is None or not isinstance(v, (int, float)) or isinstance(v, bool):
                return None
            st.limit = lim
            db = rule.deadband
            if rule.level in ("hi", "hihi"):
                return v > lim - db if st.raw else v >= lim
            return v < lim + db if st.raw else v <= lim
        if kind == "state":
            return values.get(rule.tag or "") in rule.states
        if kind == "when":
            assert ca.when is not None
            try:
                return bool(ca.when(values))
            except ExprError:
                return None
        return None

    def _rate(self, tag: str, rate: tuple[float, float, str], st: AlarmState,
              now: float) -> bool | None:
        """Whether the tag changed by ``limit`` or more within the ``per`` seconds up to
        ``now`` (or its last sample, when later).

        The value ``per`` seconds ago is the one held then (the last sample at or before;
        the pipeline and the historian keep changes only). When the window does not reach
        back that far (just after a start with no stored history), the alarm is undetermined
        (held: no false raise, no false return) unless the change seen so far already
        passes the limit."""
        hist = self._history.get(tag)
        if not hist:
            return None
        limit, per, direction = rate
        st.limit = limit
        t1, v1 = hist[-1]
        t1 = max(t1, now)
        covered = t1 - hist[0][0] >= per
        if covered:
            cut = t1 - per
            v0 = hist[0][1]
            for t, v in hist:  # the value held at t1 - per
                if t > cut:
                    break
                v0 = v
            rise = fall = v1 - v0
        else:
            rise = v1 - min(v for _t, v in hist)
            fall = v1 - max(v for _t, v in hist)
        hit = {"rise": rise >= limit, "fall": -fall >= limit,
               "both": rise >= limit or -fall >= limit}[direction]
        if hit:
            return True
        return False if covered else None

    def _evaluate(self, ca: CompiledAlarm, st: AlarmState, ts: dt.datetime,
                  changes: list[tuple[Transition, CompiledAlarm]],
                  dirty: dict[str, CompiledAlarm]) -> None:
        self.evaluations += 1
        rule = ca.rule
        before = (st.state, st.raw, st.pending, st.pending_since, st.suppressed)
        out: list[Transition] = []
        if ca.suppress is not None:
            try:
                on = bool(ca.suppress(self.values))
            except ExprError:
                on = st.suppressed
            out += sm.suppress(st, on, ts)
        if rule.kind == "change":
            v = self.values.get(rule.tag or "")
            if self.quality.get(rule.tag or "", BAD) != BAD:
                if st.value is not None and v != st.value:
                    st.value = v
                    out += sm.set_active(st, True, ts, latch=rule.latch)
                    out += sm.set_active(st, False, ts, latch=rule.latch)
                elif st.value is None:
                    st.value = v
                    dirty[rule.path] = ca
        else:
            raw = self._raw(ca, st, ts)
            if rule.tag is not None and rule.kind != "bad_quality" and (
                    rule.tag in self.values or rule.kind != "rate"):
                st.value = self.values.get(rule.tag)  # (a seeded rate keeps the stored one)
            out += sm.evaluate(st, raw, ts, on_delay=rule.on_delay, off_delay=rule.off_delay,
                               latch=rule.latch)
        if out:
            changes += [(t, ca) for t in out]
        if out or before != (st.state, st.raw, st.pending, st.pending_since, st.suppressed):
            dirty[rule.path] = ca
            self._schedule(rule.path, st)
        if rule.rate is not None:
            self._schedule_rate(rule.path, rule.tag or "", rule.rate[1], ts)

    def _schedule_rate(self, path: str, tag: str, per: float, ts: dt.datetime) -> None:
        """Evaluate ``path`` again when its window's start next reaches a sample (the value
        held ``per`` ago changes then, though no new sample may come)."""
        hist = self._history.get(tag)
        if not hist:
            return
        cut = max(hist[-1][0], ts.timestamp()) - per
        nxt = next((t for t, _v in hist if t > cut), None)
        if nxt is None:
            self._rate_next.pop(path, None)
            return
        due = dt.datetime.fromtimestamp(nxt + per, dt.UTC)
        if self._rate_next.get(path) != due:
            self._rate_next[path] = due
            heapq.heappush(self._rate_due, (due, path))

    def _schedule(self, path: str, st: AlarmState) -> None:
        ca = self.compiled.alarms.get(path)
        if ca is None:
            return
        r = ca.rule
        due = sm.next_due(st, on_delay=r.on_delay, off_delay=r.off_delay, realarm=r.realarm)
        if due is not None:
            heapq.heappush(self._due, (due, path))

    def _run_timers(self, now: dt.datetime, changes: list[tuple[Transition, CompiledAlarm]],
                    dirty: dict[str, CompiledAlarm]) -> None:
        while self._rate_due and self._rate_due[0][0] <= now:
            due, path = heapq.heappop(self._rate_due)
            if self._rate_next.get(path) != due:
                continue  # rescheduled since
            del self._rate_next[path]
            self._evaluate(self.compiled.alarms[path], self.states[path], due, changes, dirty)
        seen: set[str] = set()
        while self._due and self._due[0][0] <= now:
            _, path = heapq.heappop(self._due)
            if path in seen:
                continue
            seen.add(path)
            ca = self.compiled.alarms[path]
            st = self.states[path]
            r = ca.rule
            out = sm.tick(st, now, on_delay=r.on_delay, off_delay=r.off_delay, latch=r.latch,
                          realarm=r.realarm)
            if out:
                changes += [(t, ca) for t in out]
                dirty[path] = ca
            self._schedule(path, st)

    # ------------------------------------------------------------------ actions

    def act(self, action: str, alarms: Sequence[str], *, user: str | None,
            roles: Iterable[str], sites: Iterable[str] | None = None,
            comment: str | None = None, until: dt.datetime | None = None,
            reason: str | None = None, now: dt.datetime | None = None) -> list[dict[str, Any]]:
        """Do an operator action on each alarm; one result per alarm (ok, status, error)."""
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}")
        roles = frozenset(roles)
        allowed = None if sites is None else frozenset(sites)
        results: list[dict[str, Any]] = []
        with self._lock:
            if not self._loaded:
                self.load()
            ts = now or self.clock()
            changes: list[tuple[Transition, CompiledAlarm]] = []
            dirty: dict[str, CompiledAlarm] = {}
            for path in alarms:
                ca = self.compiled.alarms.get(path)
                if ca is None or (allowed is not None and "*" not in allowed
                                  and ca.rule.site not in allowed):
                    results.append({"alarm": path, "ok": False, "status": 404,
                                    "error": f"unknown alarm '{path}'"})
                    continue
                if not ca.rule.may(ACTIONS[action], roles):
                    need = ", ".join(sorted(ca.rule.roles.get(ACTIONS[action], ())))
                    results.append({"alarm": path, "ok": False, "status": 403,
                                    "error": f"'{action}' on '{path}' needs one of the "
                                             f"roles: {need}"})
                    continue
                st = self.states[path]
                try:
                    out = self._apply(action, st, ts, user, comment, until, reason)
                except ActionRefused as err:
                    results.append({"alarm": path, "ok": False, "status": err.status,
                                    "error": err.message, "state": st.state.value})
                    continue
                changes += [(t, ca) for t in out]
                dirty[path] = ca
                self._schedule(path, st)
                results.append({"alarm": path, "ok": True, "status": 200,
                                "from": out[0].from_state.value if out else st.state.value,
                                "state": st.state.value})
            if changes or dirty:
                self._commit(changes, dirty)
        return results

    @staticmethod
    def _apply(action: str, st: AlarmState, ts: dt.datetime, user: str | None,
               comment: str | None, until: dt.datetime | None, reason: str | None
               ) -> list[Transition]:
        if action == "acknowledge":
            return sm.acknowledge(st, ts, user, comment)
        if action == "shelve":
            if until is None or not reason:
                raise ActionRefused("a shelve needs 'until' (or 'minutes') and a 'reason'", 422)
            return sm.shelve(st, ts, until, reason, user)
        if action == "unshelve":
            return sm.unshelve(st, ts, user, comment)
        if action == "out_of_service":
            return sm.remove_from_service(st, ts, user, comment)
        if action == "in_service":
            return sm.return_to_service(st, ts, user, comment)
        return sm.reset(st, ts, user, comment)

    # ------------------------------------------------------------------ commit, events

    def _commit(self, changes: list[tuple[Transition, CompiledAlarm]],
                dirty: Mapping[str, CompiledAlarm]) -> list[dict[str, Any]]:
        if self._unsaved or self._unsaved_dirty:  # what a failed commit left: first
            changes = self._unsaved + changes
            dirty = {**self._unsaved_dirty, **dirty}
            self._unsaved, self._unsaved_dirty = [], {}
        events = [event_of(t, ca.rule, self.states[ca.rule.path]) for t, ca in changes]
        if self.store is not None and (changes or dirty):
            now = self.clock()
            metas = [(t, {"site": ca.rule.site, "area": ca.rule.area,
                          "priority": ca.rule.priority}) for t, ca in changes]
            try:
                with self.store.engine.begin() as conn:
                    self.store.save(conn, ((self.states[p], ca.rule.site)
                                           for p, ca in dirty.items()), metas, now)
                    if self.outbox is not None and events:
                        self.outbox.enqueue(conn, events)
            except Exception:
                # the database is away: keep the transitions for the next commit (journal
                # and notifications are never lost; events go out once they are stored)
                self._unsaved, self._unsaved_dirty = changes, dict(dirty)
                self.failures += 1
                log.exception("alarms: %d transition(s) not stored yet; retried with the "
                              "next batch", len(changes))
                return []
        elif self.outbox is not None and events:
            self.outbox.enqueue(None, events)
        if events:
            for listener in list(self.listeners):
                try:
                    listener(events)
                except Exception:  # a listener's problem must not stop evaluation
                    self.failures += 1
                    log.exception("alarm listener failed on %d event(s)", len(events))
        return events

    # ------------------------------------------------------------------ views

    def active(self) -> list[dict[str, Any]]:
        """Every alarm an operator sees now (not normal), as event-shaped dicts."""
        with self._lock:
            out = []
            for path, st in self.states.items():
                if st.state is State.NORMAL:
                    continue
                ca = self.compiled.alarms[path]
                out.append(event_of(None, ca.rule, st))
            return out


__all__ = ["ACTIONS", "AlarmEngine", "Outbox", "RecentHistory", "Sample"]
