"""History queries: raw samples, aggregated buckets, values at fixed times.

The Python API the REST view, the ERP rollups and later the alarm replay and HMI trends
share. Tags are chosen with the tag pattern language (``pad7.*.pip``, ``pad7.**``) among the
historised tags (retired ones included) that the caller's ``may_read`` accepts.

Aggregates over buckets that are whole hours come from the hour rollups, whole minutes from
the minute rollups (while those are kept), anything else from the samples; the answer is the
same either way (tests compare all three with a brute-force computation). Buckets are
aligned to multiples of their width since 1970-01-01 UTC, like TimescaleDB's
``time_bucket``.

Example::

    history = History(store, catalog)
    tags = history.resolve(["sim_pad.*.pip"])
    history.aggregate(tags, start, end, bucket=3_600_000_000, aggs=("avg", "twa"))
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from metamodel.tags import compile_pattern

from .buckets import AGGS, fill_grouped, finish, merge_buckets
from .catalog import Catalog
from .rollups import DeltaRow, rebuild_rows
from .samples import HOUR_US, MINUTE_US, US, HistTag, Row, from_us, join_value, to_us
from .store import Store

INTERPOLATIONS = ("previous", "linear")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_UNITS = {"ms": 1_000, "s": US, "m": MINUTE_US, "h": HOUR_US, "d": 24 * HOUR_US,
          "w": 7 * 24 * HOUR_US}
_RELATIVE = re.compile(r"^\s*(now)?\s*([+-])\s*(\d+(?:\.\d+)?\s*(?:ms|s|m|h|d|w))\s*$")


class QueryError(Exception):
    """A query the historian will not answer as asked: ``status`` 4xx, ``field`` to fix."""

    def __init__(self, message: str, field: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.status = status


def parse_duration(text: str, field: str) -> int:
    """``10s``, ``5m``, ``1h``, ``1d``, ``500ms`` in microseconds."""
    m = _DURATION.match(text or "")
    if not m:
        raise QueryError(f"'{text}' is not a duration such as 10s, 5m, 1h, 1d", field)
    us = round(float(m.group(1)) * _UNITS[m.group(2)])
    if us <= 0:
        raise QueryError(f"'{text}' must be longer than zero", field)
    return us


def parse_time(text: str, field: str, now: int) -> int:
    """An ISO 8601 instant (UTC when it names no zone), ``now`` or ``now-1h`` / ``-1h``."""
    t = (text or "").strip()
    if t == "now":
        return now
    m = _RELATIVE.match(t)
    if m:
        delta = parse_duration(m.group(3), field)
        return now - delta if m.group(2) == "-" else now + delta
    try:
        value = dt.datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError:
        raise QueryError(f"'{text}' is not a time: write ISO 8601 (2024-05-01T06:00:00Z), "
                         "'now' or 'now-1h'", field) from None
    return to_us(value)


def format_duration(us: int) -> str:
    """The shortest of ``90s``, ``5m``, ``2h``, ``1d`` for a duration."""
    for unit in ("d", "h", "m", "s"):
        if us % _UNITS[unit] == 0:
            return f"{us // _UNITS[unit]}{unit}"
    return f"{us // 1000}ms"


@dataclass
class Series:
    """One tag's answer: its definition and rows (``columns`` name the row items)."""

    tag: HistTag
    columns: tuple[str, ...]
    rows: list[list[Any]]


class History:
    """Queries over a store (thread-safe: each call opens its own connections)."""

    def __init__(self, store: Store, catalog: Catalog, max_points: int = 100_000,
                 rollup_1m_days: float = 35.0, clock: Callable[[], int] | None = None) -> None:
        self.store = store
        self.catalog = catalog
        self.max_points = max_points
        self.rollup_1m_days = rollup_1m_days
        self.clock = clock or (lambda: to_us(dt.datetime.now(dt.UTC)))

    # ------------------------------------------------------------------ tags

    def resolve(self, patterns: Iterable[str],
                may_read: Callable[[HistTag], bool] = lambda t: True) -> list[HistTag]:
        """Historised tags matching any pattern that ``may_read`` allows, by path.

        A pattern without wildcards that names no readable tag is a 404 ``QueryError``.
        """
        tags = self.catalog.tags or self.catalog.load()
        found: dict[str, HistTag] = {}
        for pattern in patterns:
            pattern = pattern.strip()
            if not pattern:
                continue
            if not any(c in pattern for c in "*?"):
                tag = tags.get(pattern)
                if tag is None or not may_read(tag):
                    tag = self.catalog.load().get(pattern)
                if tag is None or not may_read(tag):
                    raise QueryError(f"unknown tag '{pattern}' (or not in your sites)", "tags",
                                     404)
                found[tag.path] = tag
                continue
            try:
                rx = compile_pattern(pattern)
            except ValueError as err:  # PatternError: the message says how to write it
                raise QueryError(str(err), "tags") from None
            for path, tag in tags.items():
                if rx.match(path) and may_read(tag):
                    found[path] = tag
        return [found[p] for p in sorted(found)]

    # ------------------------------------------------------------------ raw

    def raw(self, tags: Sequence[HistTag], start: int, end: int,
            limit: int | None = None) -> list[Series]:
        """Every sample in ``[start, end)``; QueryError when more than ``limit``."""
        limit = self._limit(limit)
        ids = [t.id for t in tags]
        n = self.store.count(ids, start, end)
        if n > limit:
            span = end - start
            bucket = _nice_bucket(span * len(tags) // max(limit, 1))
            raise QueryError(
                f"the answer would hold about {n} samples, more than the limit of {limit}: "
                f"ask for fewer tags or a shorter range, or for buckets (e.g. "
                f"bucket={format_duration(bucket)}&agg=avg,min,max gives about "
                f"{len(tags) * (span // bucket + 1)} points)", "limit", 400)
        data = self.store.raw(ids, start, end)
        return [Series(t, ("ts", "value", "quality"),
                       [[ts, join_value(v, x, t.kind), q] for ts, v, x, q in data[t.id]])
                for t in tags]

    # ------------------------------------------------------------------ aggregates

    def source_for(self, bucket: int, start: int) -> int | None:
        """Rollup width (µs) that serves ``bucket`` from ``start``; None: the samples."""
        if bucket % HOUR_US == 0:
            return HOUR_US
        if bucket % MINUTE_US == 0 and start >= self.clock() - self.rollup_1m_days * 24 * HOUR_US:
            return MINUTE_US
        return None

    def bucket_for(self, start: int, end: int, points: int) -> int:
        """The bucket giving at most ``points`` buckets over ``[start, end)`` that the rollups
        serve: whole minutes below an hour, whole hours (1, 2, 3, 4, 6, 8, 12, 24 and whole
        days) above (a trend over weeks reads hour rollups, not minute ones)."""
        if points <= 0:
            raise QueryError("points must be a positive number", "points")
        want = -(-(end - start) // points)
        if want <= HOUR_US:
            for m in (1, 2, 5, 10, 15, 20, 30, 60):
                if m * MINUTE_US >= want:
                    return m * MINUTE_US
        for h in (1, 2, 3, 4, 6, 8, 12, 24):
            if h * HOUR_US >= want:
                return h * HOUR_US
        return -(-want // (24 * HOUR_US)) * 24 * HOUR_US

    def aggregate(self, tags: Sequence[HistTag], start: int, end: int, bucket: int,
                  aggs: Sequence[str] = ("avg", "min", "max"), limit: int | None = None,
                  from_samples: bool = False) -> tuple[list[Series], str]:
        """Buckets of ``bucket`` µs over ``[start, end)`` (widened to whole buckets).

        Returns the series and the source used (``rollup_1m``, ``rollup_1h``, ``samples``);
        ``from_samples`` skips the rollups (to check them, or after a repair).
        """
        bad = [a for a in aggs if a not in AGGS]
        if bad or not aggs:
            raise QueryError(f"unknown aggregate '{bad[0] if bad else ''}'; choose among "
                             + ", ".join(AGGS), "agg")
        start -= start % bucket
        end += -end % bucket
        limit = self._limit(limit)
        points = len(tags) * ((end - start) // bucket)
        if points > limit:
            wider = _nice_bucket((end - start) * len(tags) // max(limit, 1))
            raise QueryError(f"{points} buckets, more than the limit of {limit}: ask for a "
                             f"wider bucket (bucket={format_duration(wider)}), fewer tags or a "
                             "shorter range", "bucket", 400)
        now = self.clock()
        width = None if from_samples else self.source_for(bucket, start)
        numeric = [t for t in tags if t.kind != "text"]
        ids = [t.id for t in numeric]
        held = {k: r[1] for k, r in self.store.before(ids, start, numeric=True).items()}
        grouped = None
        if width is not None:
            source = "rollup_1h" if width == HOUR_US else "rollup_1m"
            group = getattr(self.store, "grouped_rollups", None)
            if group is not None and bucket > width:  # PostgreSQL merges in the database
                grouped = group(width, bucket, ids, start, end)
                data = {}
            else:
                data = self.store.rollup_rows(width, ids, start, end)
        else:
            samples = self.store.raw(ids, start, end)
            prev = self.store.before(ids, start, numeric=True)
            data = {}
            for t in ids:
                p = prev.get(t)
                data[t] = rebuild_rows(t, [(r[0], r[1]) for r in samples[t] if r[1] is not None],
                                       None if p is None else (p[0], p[1] or 0.0), bucket)
            width, source = bucket, "samples"
        out = []
        for t in tags:
            if t.kind == "text":
                out.append(self._text_buckets(t, start, end, bucket, aggs))
                continue
            if grouped is not None:
                merged = fill_grouped(grouped[t.id], bucket, start, end, held.get(t.id), now)
            else:
                merged = merge_buckets(data[t.id], width, bucket, start, end, held.get(t.id),
                                       now)
            out.append(Series(t, ("ts", *aggs), [[b[1], *finish(b, aggs)] for b in merged]))
        return out, source

    def window(self, tags: Sequence[HistTag], start: int, end: int) -> dict[int, DeltaRow]:
        """One summary row per numeric tag over exactly ``[start, end)`` (any alignment).

        The row has the rollup layout (count, sum, min, max, first, last, ``area`` = integral
        of the held value in value x seconds, ``covered`` seconds): what ERP rollups read.
        Whole-hour windows are summed from the hour rollups, others from the samples.
        """
        now = self.clock()
        ids = [t.id for t in tags if t.kind != "text"]
        prev = self.store.before(ids, start, numeric=True)
        held = {k: r[1] for k, r in prev.items()}
        width = end - start
        if start % HOUR_US == 0 and end % HOUR_US == 0:
            data = self.store.rollup_rows(HOUR_US, ids, start, end)
            return {t: merge_buckets(data[t], HOUR_US, width, start, end, held.get(t), now)[0]
                    for t in ids}
        samples = self.store.raw(ids, start, end)
        out: dict[int, DeltaRow] = {}
        for t in ids:
            p = prev.get(t)
            shifted = [(r[0] - start, r[1]) for r in samples[t] if r[1] is not None]
            rows = rebuild_rows(t, shifted, None if p is None else (p[0] - start, p[1] or 0.0),
                                width)
            out[t] = merge_buckets(rows, width, width, 0, width, held.get(t), now - start)[0]
        return out

    def _text_buckets(self, tag: HistTag, start: int, end: int, bucket: int,
                      aggs: Sequence[str]) -> Series:
        rows = self.store.raw([tag.id], start, end)[tag.id]
        by: dict[int, list[Row]] = {}
        for r in rows:
            by.setdefault(r[0] - r[0] % bucket, []).append(r)
        out = []
        for b in range(start, end, bucket):
            got = by.get(b, [])
            vals: list[Any] = []
            for a in aggs:
                if a == "count":
                    vals.append(len(got))
                elif a == "first" and got:
                    vals.append(got[0][2])
                elif a == "last" and got:
                    vals.append(got[-1][2])
                else:
                    vals.append(None)
            out.append([b, *vals])
        return Series(tag, ("ts", *aggs), out)

    # ------------------------------------------------------------------ interpolation

    def interpolate(self, tags: Sequence[HistTag], start: int, end: int, interval: int,
                    method: str = "previous", limit: int | None = None) -> list[Series]:
        """Values at ``start``, ``start + interval``, ... up to ``end`` (inclusive)."""
        if method not in INTERPOLATIONS:
            raise QueryError(f"unknown interpolation '{method}'; choose previous or linear",
                             "interpolate")
        limit = self._limit(limit)
        steps = (end - start) // interval + 1
        if steps * len(tags) > limit:
            raise QueryError(f"{steps * len(tags)} values, more than the limit of {limit}: "
                             "ask for a longer interval, fewer tags or a shorter range",
                             "interval", 400)
        ids = [t.id for t in tags]
        now = self.clock()
        data = self.store.raw(ids, start, end + 1)
        before = self.store.before(ids, start)
        after = self.store.after(ids, end + 1) if method == "linear" else {}
        out = []
        for t in tags:
            rows = data[t.id]
            if t.id in before:
                rows = [before[t.id], *rows]
            if t.id in after:
                rows = [*rows, after[t.id]]
            linear = method == "linear" and t.kind == "number"
            out.append(Series(t, ("ts", "value", "quality"),
                              _at_times(rows, start, end, interval, now, linear, t.kind)))
        return out

    def _limit(self, limit: int | None) -> int:
        if limit is None:
            return self.max_points
        if limit <= 0:
            raise QueryError("limit must be a positive number of points", "limit")
        return min(limit, self.max_points)


def _at_times(rows: list[Row], start: int, end: int, interval: int, now: int, linear: bool,
              kind: str) -> list[list[Any]]:
    out: list[list[Any]] = []
    i = -1
    n = len(rows)
    t = start
    while t <= end:
        while i + 1 < n and rows[i + 1][0] <= t:
            i += 1
        if t > now or i < 0:
            out.append([t, None, None])
        else:
            ts, v, x, q = rows[i]
            value: Any = join_value(v, x, kind)
            if linear and ts < t and i + 1 < n and v is not None and rows[i + 1][1] is not None:
                nts, nv, _nx, nq = rows[i + 1]
                value = v + (nv - v) * (t - ts) / (nts - ts)
                q = min(q, nq)
            out.append([t, value, q])
        t += interval
    return out


def _nice_bucket(us: int) -> int:
    for step in (MINUTE_US, 5 * MINUTE_US, 15 * MINUTE_US, HOUR_US, 6 * HOUR_US, 24 * HOUR_US):
        if us <= step:
            return step
    return -(-us // (24 * HOUR_US)) * 24 * HOUR_US


__all__ = ["History", "INTERPOLATIONS", "QueryError", "Series", "format_duration", "from_us",
           "parse_duration", "parse_time"]
