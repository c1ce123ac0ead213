"""Replay stored history through alarm rules and compute the KPIs they would have produced.

The same :class:`~engine.alarms.engine.AlarmEngine` as the runtime's, in memory (no store,
no listeners, timers driven by the samples' own times), so a consultant sees an alarm flood
before a change ships. History comes from a :class:`HistoryReader`: anything that yields
samples in time order for some tags and a period: the historian's store
(:class:`HistorianReader`, what ``campo alarms replay`` reads), or a CSV file of
``ts,tag,value,quality`` rows (:class:`CsvReader`, ``--input``).

The historian keeps changes only, so a tag steady over the whole period has no sample in
it: :class:`HistorianReader` starts with each tag's value held at ``start`` (its last
sample before), and the replay seeds the rate-of-change alarms with the samples of their
window before ``start`` (:meth:`AlarmEngine.seed_rates`), as the runtime does at start-up.

Example::

    result = replay(compile_alarms(tags), HistorianReader(open_store(db)), start, end)
    print(format_kpis(result.kpis))
"""

from __future__ import annotations

import csv
import datetime as dt
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import Any, Protocol

from engine.historian import Catalog, HistTag, Store
from engine.historian.samples import US, from_us, join_value, to_us

from .compile import CompiledAlarms
from .engine import AlarmEngine
from .kpi import Annunciation, kpis

_QUALITY = {"good": 2, "uncertain": 1, "bad": 0, "2": 2, "1": 1, "0": 0}


@dataclass(frozen=True, slots=True)
class HistSample:
    """A stored tag value."""

    tag: str
    value: Any
    quality: int
    ts: dt.datetime
    reason: str | None = None


class HistoryReader(Protocol):
    """Samples of ``tags`` between ``start`` and ``end``, oldest first."""

    def samples(self, tags: Sequence[str], start: dt.datetime, end: dt.datetime
                ) -> Iterator[HistSample]: ...


class CsvReader:
    """History from a CSV file with the header ``ts,tag,value,quality`` (sorted by ts)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def samples(self, tags: Sequence[str], start: dt.datetime, end: dt.datetime
                ) -> Iterator[HistSample]:
        wanted = set(tags)
        with self.path.open(newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                if row["tag"] not in wanted:
                    continue
                ts = dt.datetime.fromisoformat(row["ts"])
                if ts.tzinfo is None:
                    ts = ts.replace(tzinfo=dt.UTC)
                if ts < start:
                    continue
                if ts >= end:
                    break
                yield HistSample(row["tag"], _value(row["value"]),
                                 _QUALITY.get(str(row.get("quality", "good")).lower(), 2), ts)


class HistorianReader:
    """History from the historian's store (:mod:`engine.historian`): each tag's value held at
    ``start``, then every stored sample, read ``window`` seconds at a time and merged in time
    order. Tags the historian never stored are left out (:attr:`missing` after a read)."""

    def __init__(self, store: Store, window: float = 3600.0, *, dispose: bool = False) -> None:
        self.store = store
        self.window_us = max(1, round(window * US))
        self.missing: list[str] = []
        #: whether :meth:`close` disposes of the store's database engine (one of its own)
        self.dispose = dispose

    def close(self) -> None:
        """Let go of the store's connections when this reader owns its engine."""
        if self.dispose:
            self.store.engine.dispose()

    def _tags(self, tags: Sequence[str]) -> list[HistTag]:
        known = Catalog(self.store).load()
        self.missing = [t for t in tags if t not in known]
        return [known[t] for t in tags if t in known]

    def samples(self, tags: Sequence[str], start: dt.datetime, end: dt.datetime
                ) -> Iterator[HistSample]:
        hist = self._tags(tags)
        by_id = {t.id: t for t in hist}
        ids = sorted(by_id)
        lo, hi = to_us(start), to_us(end)
        for tag_id, (_ts, v, x, q) in sorted(self.store.before(ids, lo).items()):
            t = by_id[tag_id]
            yield HistSample(t.path, join_value(v, x, t.kind), q, start)
        yield from self._between(by_id, ids, lo, hi)

    def _between(self, by_id: dict[int, HistTag], ids: list[int], lo: int, hi: int
                 ) -> Iterator[HistSample]:
        if not ids:
            return
        w = lo
        while w < hi:
            we = min(w + self.window_us, hi)
            data = self.store.raw(ids, w, we)
            rows: list[tuple[int, HistTag, float | None, str | None, int]] = []
            for tag_id, got in data.items():  # by tag id: a stable sort keeps that on ties
                t = by_id[tag_id]
                rows.extend((ts, t, v, x, q) for ts, v, x, q in got)
            rows.sort(key=_first)
            for ts, t, v, x, q in rows:
                yield HistSample(t.path, join_value(v, x, t.kind), q, from_us(ts))
            w = we


_first = itemgetter(0)


def _value(text: str) -> Any:
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("", "null", "none"):
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


@dataclass
class ReplayResult:
    """What a replay produced: annunciations, final states, KPIs and how fast it ran."""

    annunciations: list[Annunciation]
    transitions: int
    samples: int
    evaluations: int
    wall_seconds: float
    kpis: dict[str, Any] = field(default_factory=dict)

    @property
    def speedup(self) -> float:
        """Simulated time divided by wall time."""
        span = (dt.datetime.fromisoformat(self.kpis["to"]) -
                dt.datetime.fromisoformat(self.kpis["from"])).total_seconds()
        return span / max(self.wall_seconds, 1e-9)


Progress = Callable[[float], None]


def replay(compiled: CompiledAlarms, reader: HistoryReader, start: dt.datetime,
           end: dt.datetime, *, operators: int = 1, progress: Progress | None = None,
           batch_seconds: float = 1.0) -> ReplayResult:
    """Run ``compiled`` over the history of its input tags from ``start`` to ``end``."""
    # the rate-of-change windows start with the samples before ``start`` (load seeds them)
    engine = AlarmEngine(compiled, None, clock=lambda: start, timer_period=0,
                         history=lambda: reader)
    engine.load()
    seen: list[Annunciation] = []
    count = [0]

    def listen(events: list[dict[str, Any]]) -> None:
        count[0] += len(events)
        for e in events:
            if e["action"] in ("raise", "realarm"):
                seen.append(Annunciation(e["alarm"], dt.datetime.fromisoformat(e["ts"]),
                                         e["priority"]))

    engine.listeners.append(listen)
    tags = sorted(compiled.by_tag)
    span = max((end - start).total_seconds(), 1e-9)
    t0 = time.perf_counter()
    n = 0
    batch: list[HistSample] = []
    batch_end = start + dt.timedelta(seconds=batch_seconds)
    last_report = -1.0
    for s in _ordered(reader.samples(tags, start, end)):
        if s.ts >= batch_end:
            if batch:
                engine.process(batch, now=batch[-1].ts)
                batch = []
            engine.tick(s.ts)
            batch_end = s.ts + dt.timedelta(seconds=batch_seconds)
            if progress is not None:
                done = (s.ts - start).total_seconds() / span
                if done - last_report >= 0.01:
                    last_report = done
                    progress(done)
        batch.append(s)
        n += 1
    if batch:
        engine.process(batch, now=batch[-1].ts)
    engine.tick(end)
    if progress is not None:
        progress(1.0)
    wall = time.perf_counter() - t0
    states = engine.active()
    result = ReplayResult(seen, count[0], n, engine.evaluations, wall)
    result.kpis = kpis(seen, start, end, operators=operators, states=states, now=end)
    return result


def _ordered(samples: Iterable[HistSample]) -> Iterator[HistSample]:
    last: dt.datetime | None = None
    for s in samples:
        if last is not None and s.ts < last:
            raise ValueError(f"history is not in time order at {s.ts.isoformat()} ({s.tag})")
        last = s.ts
        yield s


__all__ = ["CsvReader", "HistSample", "HistorianReader", "HistoryReader", "ReplayResult",
           "replay"]
