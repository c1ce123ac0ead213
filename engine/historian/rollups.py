"""Rollups per tag and bucket (1 minute, 1 hour), kept up to date as samples arrive.

A rollup row holds count, sum, min, max, first and last (with their times), and for the
time-weighted average the integral (``area``, value x seconds) of the held value over the
``covered`` seconds of the bucket. A value is held from its sample until the next sample,
so each row is written as if its last value were held to the end of its bucket; the next
sample corrects that. Per sample ``(t, v)`` after ``(pt, pv)``, in bucket ``[b, e)``:

- the tag's first sample: ``area += v (e - t)``, ``covered += e - t``;
- the same bucket as ``pt``: ``area += (v - pv)(e - t)``;
- a later bucket: ``area += pv (t - b) + v (e - t)``, ``covered += e - b``.

Buckets between two samples get no row: their value is the held one. :func:`roll` turns one
tag's sorted samples into *delta* rows that the stores merge into the tables (sums add,
min/max/first/last compare). Samples older than the tag's last one are not rolled here: the
store rebuilds the buckets they touch from the raw samples with :func:`roll` on a fresh
state (:func:`rebuild_rows`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .samples import HOUR_US, MINUTE_US, US

WIDTHS_US: tuple[int, ...] = (MINUTE_US, HOUR_US)

# delta row: [tag_id, bucket, count, sum, min, max, first, first_ts, last, last_ts, area, covered]
DeltaRow = list[float]
Prev = tuple[int, float]
"""``(ts_us, value)``: a tag's last numeric sample."""


def roll(tag_id: int, samples: Sequence[tuple[int, float]], prev: Prev | None, width: int,
         out: list[DeltaRow]) -> None:
    """Append the delta rows of ``samples`` (sorted, all after ``prev``) to ``out``."""
    if not samples:
        return
    # the open bucket in local variables (the hot loop: one sample at a time)
    cb = -1
    count = 0
    total = lo = hi = first = last = area = cov = 0.0
    first_t = last_t = 0
    pb = -1
    pv = 0.0
    have_prev = prev is not None
    if prev is not None:
        pt, pv = prev
        pb = pt - pt % width
    w_s = width / US
    for t, v in samples:
        b = t - t % width
        if b == cb:
            count += 1
            total += v
            if v < lo:
                lo = v
            elif v > hi:
                hi = v
            area += (v - pv) * (b + width - t) / US
            last = v
            last_t = t
            pv = v
            continue
        if count:
            out.append([tag_id, cb, count, total, lo, hi, first, first_t, last, last_t, area,
                        cov])
        rest = (b + width - t) / US
        if not have_prev:
            area, cov = v * rest, rest
            have_prev = True
        elif b == pb:
            area, cov = (v - pv) * rest, 0.0
        else:
            area, cov = pv * (t - b) / US + v * rest, w_s
        cb, count, total, lo, hi, first, first_t, last, last_t = b, 1, v, v, v, v, t, v, t
        pv = v
    out.append([tag_id, cb, count, total, lo, hi, first, first_t, last, last_t, area, cov])


def rebuild_rows(tag_id: int, samples: Iterable[tuple[int, float]], prev: Prev | None,
                 width: int) -> list[DeltaRow]:
    """Complete rows of the buckets holding ``samples`` (``prev``: the sample before them)."""
    out: list[DeltaRow] = []
    roll(tag_id, list(samples), prev, width, out)
    return out


def merge(a: DeltaRow, b: DeltaRow) -> DeltaRow:
    """Two delta rows of the same tag and bucket as one (what the stores' upserts do)."""
    first = a if a[7] <= b[7] else b
    last = a if a[9] >= b[9] else b
    return [a[0], a[1], a[2] + b[2], a[3] + b[3], min(a[4], b[4]), max(a[5], b[5]),
            first[6], first[7], last[8], last[9], a[10] + b[10], a[11] + b[11]]
