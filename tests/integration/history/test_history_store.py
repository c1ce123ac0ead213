"""The historian's store on SQLite, PostgreSQL (native partitions) and TimescaleDB: ingest,
every query shape, rollups against a brute-force computation on random data."""

from __future__ import annotations

import random
from typing import Any

import pytest
from history_support import NOW, brute, close, random_series

from engine.historian.catalog import TagPolicy
from engine.historian.query import QueryError
from engine.historian.samples import HOUR_US, MINUTE_US, US

pytestmark = pytest.mark.integration

TAGS = [TagPolicy("pad.w1.pip", "pad", "number", "psi"),
        TagPolicy("pad.w1.run", "pad", "bool"),
        TagPolicy("pad.w1.state", "pad", "text"),
        TagPolicy("pad.w2.pip", "pad", "number", "psi"),
        TagPolicy("other.x.flow", "other", "number")]


def _load(h: Any, rows: list[Any], batch: int = 700) -> None:
    """Ingest in batches as the writer would (interleaved tags, time order)."""
    rows = sorted(rows, key=lambda r: r[1])
    for i in range(0, len(rows), batch):
        h.ingest.write(rows[i:i + batch])


def _data(seed: int = 7) -> dict[str, list[Any]]:
    rng = random.Random(seed)
    start = NOW - 5 * HOUR_US - 17 * MINUTE_US
    return {
        "pad.w1.pip": random_series(rng, "pad.w1.pip", start, NOW - 20 * US, 7.0),
        "pad.w1.run": random_series(rng, "pad.w1.run", start, NOW - 90 * US, 95.0, "bool"),
        "pad.w1.state": random_series(rng, "pad.w1.state", start, NOW, 300.0, "text"),
        "pad.w2.pip": random_series(rng, "pad.w2.pip", start + 2 * HOUR_US, NOW - 3 * HOUR_US,
                                    40.0),
    }


def test_raw_round_trip_and_patterns(backend_url: tuple[str, str], new_hist: Any) -> None:
    backend, url = backend_url
    h = new_hist(TAGS)
    assert h.store.kind == backend
    data = _data()
    _load(h, [r for rows in data.values() for r in rows])
    tags = h.history.resolve(["pad.*.pip"])
    assert [t.path for t in tags] == ["pad.w1.pip", "pad.w2.pip"]
    series = h.history.raw(tags, NOW - 6 * HOUR_US, NOW)
    for s in series:
        want = [[r[1], r[2], r[4]] for r in data[s.tag.path]]
        assert s.rows == want, s.tag.path
    run = h.history.raw(h.history.resolve(["pad.w1.run"]), NOW - 6 * HOUR_US, NOW)[0]
    assert run.rows == [[r[1], r[2], r[4]] for r in data["pad.w1.run"]]
    assert all(isinstance(r[1], bool) for r in run.rows)
    state = h.history.raw(h.history.resolve(["pad.**.state"]), NOW - 6 * HOUR_US, NOW)[0]
    assert state.rows == [[r[1], r[3], r[4]] for r in data["pad.w1.state"]]
    # a part of the range
    lo, hi = NOW - 3 * HOUR_US, NOW - 2 * HOUR_US
    part = h.history.raw(h.history.resolve(["pad.w1.pip"]), lo, hi)[0]
    assert part.rows == [[r[1], r[2], r[4]] for r in data["pad.w1.pip"] if lo <= r[1] < hi]
    # access: a reader of site 'other' sees none of pad's tags
    assert h.history.resolve(["**"], lambda t: t.site == "other") == [
        h.catalog.tags["other.x.flow"]]
    with pytest.raises(QueryError) as err:
        h.history.resolve(["pad.w1.pip"], lambda t: t.site == "other")
    assert err.value.status == 404


@pytest.mark.parametrize("bucket", [MINUTE_US, 7 * MINUTE_US, HOUR_US, 2 * HOUR_US, 45 * US])
def test_aggregates_match_brute_force(backend_url: tuple[str, str], new_hist: Any,
                                     bucket: int) -> None:
    backend, url = backend_url
    h = new_hist(TAGS)
    data = _data(seed=bucket % 1000)
    _load(h, [r for rows in data.values() for r in rows], batch=313)
    start = NOW - 6 * HOUR_US
    end = NOW + 2 * HOUR_US
    aggs = ("avg", "min", "max", "first", "last", "count", "twa")
    tags = h.history.resolve(["pad.w1.pip", "pad.w1.run", "pad.w2.pip"])
    series, source = h.history.aggregate(tags, start, end, bucket, aggs)
    expected_source = ("rollup_1h" if bucket % HOUR_US == 0 else
                       "rollup_1m" if bucket % MINUTE_US == 0 else "samples")
    assert source == expected_source
    a0 = start - start % bucket
    a1 = end + (-end % bucket)
    for s in series:
        nums = [(r[1], float(r[2])) for r in data[s.tag.path] if r[2] is not None]
        want = brute(nums, a0, a1, bucket, NOW)
        assert len(s.rows) == len(want)
        for got, exp in zip(s.rows, want, strict=True):
            assert got[0] == exp["ts"]
            for i, a in enumerate(aggs, start=1):
                assert close(got[i], exp[a]), (s.tag.path, a, got[0], got[i], exp[a])


def test_rollups_agree_with_samples(backend_url: tuple[str, str], new_hist: Any) -> None:
    """The hour and minute rollups give the answers the samples give; minute buckets fall
    back to the samples once the minute rollups are past their keeping time."""
    h = new_hist(TAGS)
    data = _data(seed=3)
    _load(h, [r for rows in data.values() for r in rows], batch=50)
    tags = h.history.resolve(["pad.w1.pip", "pad.w1.run"])
    start, end = NOW - 6 * HOUR_US, NOW
    aggs = ("twa", "avg", "count", "min", "max", "first", "last")
    for bucket, source in ((2 * HOUR_US, "rollup_1h"), (30 * MINUTE_US, "rollup_1m")):
        rolled, s1 = h.history.aggregate(tags, start, end, bucket, aggs)
        raw, s2 = h.history.aggregate(tags, start, end, bucket, aggs, from_samples=True)
        assert (s1, s2) == (source, "samples")
        for a, b in zip(rolled, raw, strict=True):
            assert len(a.rows) == len(b.rows)
            for ra, rb in zip(a.rows, b.rows, strict=True):
                assert ra[0] == rb[0] and all(close(x, y) for x, y in zip(ra, rb, strict=True))
    h.history.rollup_1m_days = 0
    _, s3 = h.history.aggregate(tags, start, end, 30 * MINUTE_US, aggs)
    assert s3 == "samples"


def test_out_of_order_and_replayed_batches(backend_url: tuple[str, str], new_hist: Any) -> None:
    """A late sample rebuilds the buckets it touches; a batch written twice counts once."""
    _backend, url = backend_url
    h = new_hist(TAGS)
    rng = random.Random(11)
    rows = random_series(rng, "pad.w1.pip", NOW - 3 * HOUR_US, NOW - 10 * US, 20.0)
    early, late = rows[::2], rows[1::2]
    _load(h, early, batch=97)
    _load(h, late, batch=31)           # every one older than the tag's last sample
    _load(h, rows[100:400], batch=64)  # replayed: already stored
    assert h.ingest.write(rows[100:130]) == 0
    tags = h.history.resolve(["pad.w1.pip"])
    assert h.history.raw(tags, NOW - 4 * HOUR_US, NOW)[0].rows == [
        [r[1], r[2], r[4]] for r in rows]
    nums = [(r[1], float(r[2])) for r in rows]
    for bucket in (MINUTE_US, HOUR_US):
        series, _ = h.history.aggregate(tags, NOW - 4 * HOUR_US, NOW, bucket,
                                        ("count", "twa", "first", "last"))
        want = brute(nums, NOW - 4 * HOUR_US - (NOW - 4 * HOUR_US) % bucket,
                     NOW + (-NOW % bucket), bucket, NOW)
        for got, exp in zip(series[0].rows, want, strict=True):
            assert got[1] == exp["count"]
            assert close(got[2], exp["twa"]) and close(got[3], exp["first"])
            assert close(got[4], exp["last"])


def test_interpolation(backend_url: tuple[str, str], new_hist: Any) -> None:
    _backend, url = backend_url
    h = new_hist(TAGS)
    t0 = NOW - HOUR_US
    rows = [("pad.w1.pip", t0 + k * 10 * US, float(k * 10), None, 2) for k in range(30)]
    rows.append(("pad.w1.run", t0 + 5 * US, True, None, 2))
    rows.append(("pad.w1.run", t0 + 95 * US, False, None, 1))
    _load(h, rows)
    tags = h.history.resolve(["pad.w1.pip", "pad.w1.run"])
    prev = h.history.interpolate(tags, t0 - 10 * US, t0 + 30 * US, 5 * US, "previous")
    assert [r[1] for r in prev[0].rows] == [None, None, 0.0, 0.0, 10.0, 10.0, 20.0, 20.0, 30.0]
    lin = h.history.interpolate(tags, t0 + 2 * US, t0 + 22 * US, 5 * US, "linear")
    assert [r[1] for r in lin[0].rows] == pytest.approx([2.0, 7.0, 12.0, 17.0, 22.0])
    # bools are held (never interpolated linearly); the quality is the sample's
    run = h.history.interpolate(tags, t0, t0 + 120 * US, 30 * US, "linear")[1]
    assert [r[1:] for r in run.rows] == [[None, None], [True, 2], [True, 2], [True, 2],
                                         [False, 1]]
    # after the last sample the value is held up to now, and unknown after now
    late = h.history.interpolate(tags, NOW - 10 * US, NOW + 10 * US, 10 * US, "previous")[0]
    assert [r[1] for r in late.rows] == [290.0, 290.0, None]


def test_point_limits_name_the_way_out(backend_url: tuple[str, str], new_hist: Any) -> None:
    _backend, url = backend_url
    h = new_hist(TAGS)
    rows = [("pad.w1.pip", NOW - HOUR_US + k * US, float(k), None, 2) for k in range(500)]
    _load(h, rows)
    tags = h.history.resolve(["pad.w1.pip"])
    with pytest.raises(QueryError) as err:
        h.history.raw(tags, NOW - 2 * HOUR_US, NOW, limit=100)
    assert err.value.field == "limit" and "bucket=" in err.value.message
    assert "500 samples" in err.value.message
    assert len(h.history.raw(tags, NOW - 2 * HOUR_US, NOW, limit=500)[0].rows) == 500
    with pytest.raises(QueryError) as err:
        h.history.aggregate(tags, NOW - 30 * 24 * HOUR_US, NOW, MINUTE_US, ("avg",), limit=1000)
    assert err.value.field == "bucket" and "bucket=1h" in err.value.message
