"""Output buckets from rollup rows: merge, fill held-value gaps, finish the aggregates.

A query asks for buckets of width ``W`` (a multiple of the source rows' width ``w``, epoch
aligned). Rows of one tag, sorted, each written as if its last value were held to the end of
its own bucket (:mod:`engine.historian.rollups`), merge into output buckets; the seconds
between rows carry the previous row's last value (the held value), and so do the output
buckets without any row. The output bucket holding ``now`` counts only up to ``now``.
"""

from __future__ import annotations

from collections.abc import Sequence

from .rollups import DeltaRow
from .samples import US

AGGS: tuple[str, ...] = ("avg", "min", "max", "first", "last", "count", "twa")


def merge_buckets(rows: Sequence[DeltaRow], w: int, width: int, start: int, end: int,
                  held: float | None, now: int) -> list[DeltaRow]:
    """Every output bucket of ``[start, end)`` (aligned to ``width``) for one tag's rows.

    ``rows`` are sorted rows of width ``w`` inside the range; ``held`` is the value held at
    ``start`` (the last value before it, None when the tag had none). Output rows have the
    layout of :data:`~engine.historian.rollups.DeltaRow`; an empty bucket has count 0 and
    NaN statistics, and its area/covered come from the held value.
    """
    out: list[DeltaRow] = []
    nan = float("nan")
    i = 0
    n = len(rows)
    ob = start
    while ob < end:
        oe = ob + width
        cur: DeltaRow | None = None
        # the end of what is already accounted for inside this output bucket
        upto = ob
        while i < n and rows[i][1] < oe:
            r = rows[i]
            if held is not None and r[1] > upto:
                gap = (r[1] - upto) / US
                area_gap, cov_gap = held * gap, gap
            else:
                area_gap = cov_gap = 0.0
            if cur is None:
                cur = [r[0], ob, r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9],
                       r[10] + area_gap, r[11] + cov_gap]
            else:
                cur[2] += r[2]
                cur[3] += r[3]
                if r[4] < cur[4]:
                    cur[4] = r[4]
                if r[5] > cur[5]:
                    cur[5] = r[5]
                cur[8], cur[9] = r[8], r[9]
                cur[10] += r[10] + area_gap
                cur[11] += r[11] + cov_gap
            held = r[8]
            upto = r[1] + w
            i += 1
        if cur is None:
            cur = [0, ob, 0, 0.0, nan, nan, nan, 0, nan, 0, 0.0, 0.0]
        if held is not None and upto < oe:
            gap = (oe - upto) / US
            cur[10] += held * gap
            cur[11] += gap
        _stop_at_now(cur, ob, oe, now, held)
        out.append(cur)
        ob = oe
    return out


def fill_grouped(rows: Sequence[DeltaRow], width: int, start: int, end: int,
                 held: float | None, now: int) -> list[DeltaRow]:
    """Every output bucket of ``[start, end)`` from database-grouped rows (see
    ``PgStore.grouped_rows``): the held value before the first row, empty buckets, ``now``."""
    out: list[DeltaRow] = []
    nan = float("nan")
    by = {int(r[1]): r for r in rows}
    first = True
    ob = start
    while ob < end:
        oe = ob + width
        r = by.get(ob)
        if r is not None:
            cur = list(r[:12])
            if first and held is not None and r[12] > ob:
                gap = (r[12] - ob) / US
                cur[10] += held * gap
                cur[11] += gap
            first = False
            held = cur[8]
        else:
            cur = [0, ob, 0, 0.0, nan, nan, nan, 0, nan, 0, 0.0, 0.0]
            if held is not None:
                cur[10], cur[11] = held * width / US, width / US
        _stop_at_now(cur, ob, oe, now, held)
        out.append(cur)
        ob = oe
    return out


def _stop_at_now(cur: DeltaRow, ob: int, oe: int, now: int, held: float | None) -> None:
    """The held value counts up to ``now`` only: cut the bucket holding ``now``, empty the
    buckets after it (time-weighted area and covered seconds)."""
    if ob <= now < oe and held is not None and cur[11] > 0:
        cut = min((oe - now) / US, cur[11])
        cur[10] -= held * cut
        cur[11] -= cut
    elif now < ob:
        cur[10] = cur[11] = 0.0


def finish(row: DeltaRow, aggs: Sequence[str]) -> list[float | int | None]:
    """The requested aggregates of one merged bucket (None where there is no value)."""
    count = int(row[2])
    vals: list[float | int | None] = []
    for a in aggs:
        if a == "count":
            vals.append(count)
        elif a == "twa":
            vals.append(row[10] / row[11] if row[11] > 0 else None)
        elif count == 0:
            vals.append(None)
        elif a == "avg":
            vals.append(row[3] / count)
        elif a == "min":
            vals.append(row[4])
        elif a == "max":
            vals.append(row[5])
        elif a == "first":
            vals.append(row[6])
        elif a == "last":
            vals.append(row[8])
    return vals
