"""Retention and compaction: old partitions dropped, compacted days answering as before."""

from __future__ import annotations

import random
from typing import Any

import pytest
from history_support import NOW, f32, random_series

from engine.historian.catalog import TagPolicy
from engine.historian.pgstore import day_of
from engine.historian.samples import DAY_US, HOUR_US, MINUTE_US, US

pytestmark = pytest.mark.integration


def _tags(**over: Any) -> list[TagPolicy]:
    return [TagPolicy("pad.w1.pip", "pad", "number", **over.get("pip", {})),
            TagPolicy("pad.w1.run", "pad", "bool", **over.get("run", {})),
            TagPolicy("pad.w1.note", "pad", "text", **over.get("note", {}))]


def _history(h: Any, start: int, end: int) -> dict[str, Any]:
    """Every query shape over ``[start, end)``, for before/after comparisons."""
    tags = h.history.resolve(["pad.**"])
    return {
        "raw": [s.rows for s in h.history.raw(tags, start, end)],
        "samples": [s.rows for s in h.history.aggregate(
            tags, start, end, 3 * HOUR_US, ("avg", "min", "max", "count", "twa", "first",
                                            "last"), from_samples=True)[0]],
        "hour": [s.rows for s in h.history.aggregate(tags, start, end, HOUR_US,
                                                     ("twa", "count"))[0]],
        "prev": [s.rows for s in h.history.interpolate(tags, start, end, 17 * MINUTE_US)],
        "lin": [s.rows for s in h.history.interpolate(tags, start, end, 13 * MINUTE_US,
                                                      "linear")],
    }


def _fill(h: Any, days: int, seed: int = 5) -> list[Any]:
    rng = random.Random(seed)
    start = NOW - days * DAY_US
    rows = (random_series(rng, "pad.w1.pip", start, NOW, 60.0)
            + random_series(rng, "pad.w1.run", start, NOW, 900.0, "bool")
            + random_series(rng, "pad.w1.note", start, NOW, 7200.0, "text"))
    rows.sort(key=lambda r: r[1])
    for i in range(0, len(rows), 2000):
        h.ingest.write(rows[i:i + 2000])
    return rows


def test_native_compaction_answers_as_before(pg_url: str, request: pytest.FixtureRequest
                                              ) -> None:
    from history_support import make_hist

    h = make_hist(pg_url, _tags(pip={"compaction_days": 3.0}, run={"compaction_days": 3.0},
                                note={"compaction_days": 9.0}))
    request.addfinalizer(h.store.engine.dispose)
    rows = _fill(h, 12)
    span = (NOW - 13 * DAY_US, NOW)
    before = _history(h, *span)
    with h.store.engine.connect() as conn:
        days_before = h.store.partitions(conn)
    report = h.store.maintain(list(h.catalog.tags.values()), NOW)
    assert report["compacted"] > 0
    with h.store.engine.connect() as conn:
        days_after = h.store.partitions(conn)
        blocks = conn.exec_driver_sql("SELECT count(*), sum(n) FROM campo_history_block").one()
    # days older than 9 days: every tag compacted, partition dropped; 3..9 days: kept for
    # the text tag (its rows stay), the others moved to blocks
    old = {d for d in days_before if d < day_of(NOW - 10 * DAY_US)}
    assert old and not (old & set(days_after))
    assert day_of(NOW - 5 * DAY_US) in days_after
    assert blocks[0] > 0 and blocks[1] > 0
    h.store.refresh()
    assert _history(h, *span) == before
    # a late sample into a compacted hour merges into its block; a repeated one is ignored
    t_late = NOW - 11 * DAY_US + 1234567
    late = [("pad.w1.pip", t_late, f32(123.5), None, 2)]
    assert h.ingest.write(late) == 1
    assert h.ingest.write(late) == 0
    got = h.history.raw(h.history.resolve(["pad.w1.pip"]), t_late - US, t_late + US)[0].rows
    assert got == [[t_late, f32(123.5), 2]]
    with h.store.engine.connect() as conn:
        assert h.store.partitions(conn) == days_after  # no partition re-created for it
    # the rollups around the late sample are rebuilt: hour buckets agree with the samples
    tags = h.history.resolve(["pad.w1.pip"])
    a, _ = h.history.aggregate(tags, t_late - 3 * HOUR_US, t_late + 3 * HOUR_US, HOUR_US,
                               ("twa", "count", "min", "max"))
    b, _ = h.history.aggregate(tags, t_late - 3 * HOUR_US, t_late + 3 * HOUR_US, HOUR_US,
                               ("twa", "count", "min", "max"), from_samples=True)
    for ra, rb in zip(a[0].rows, b[0].rows, strict=True):
        assert ra == pytest.approx(rb)
    assert len(rows) > 10_000


def test_native_compaction_is_small(pg_url: str, request: pytest.FixtureRequest) -> None:
    from history_support import make_hist

    h = make_hist(pg_url, [TagPolicy(f"pad.w{i}.pip", "pad", "number", compaction_days=1.0)
                           for i in range(4)])
    request.addfinalizer(h.store.engine.dispose)
    rng = random.Random(2)
    day0 = NOW - NOW % DAY_US - 3 * DAY_US
    rows = []
    for i in range(4):
        v = 500.0
        for k in range(8640):
            v += rng.gauss(0, 0.5)
            rows.append((f"pad.w{i}.pip", day0 + k * 10 * US + rng.randrange(2000), f32(v),
                         None, 2))
    rows.sort(key=lambda r: r[1])
    for i in range(0, len(rows), 5000):
        h.ingest.write(rows[i:i + 5000])
    hot = h.store.size_bytes()["campo_history"]
    h.store.maintain(list(h.catalog.tags.values()), NOW)
    size = h.store.size_bytes()
    assert size["campo_history"] < hot
    per_sample = size["campo_history_block"] / len(rows)
    assert per_sample <= 8, per_sample
    assert hot / len(rows) > 40


def test_native_retention_drops_partitions(pg_url: str, request: pytest.FixtureRequest
                                           ) -> None:
    from history_support import make_hist

    h = make_hist(pg_url, _tags(pip={"retention_days": 4.0, "compaction_days": 2.0},
                                run={"retention_days": 6.0}, note={"retention_days": 6.0}))
    request.addfinalizer(h.store.engine.dispose)
    _fill(h, 10)
    tags = list(h.catalog.tags.values())
    h.store.maintain(tags, NOW)
    gone = h.store.apply_retention(tags, NOW, rollup_1m_days=3.0)
    assert gone > 0
    with h.store.engine.connect() as conn:
        days = h.store.partitions(conn)
        oldest_1m = conn.exec_driver_sql(
            "SELECT min(bucket) FROM campo_history_1m").scalar()
    assert min(days) >= day_of(NOW - 6 * DAY_US)
    assert oldest_1m.timestamp() * US >= NOW - 3 * DAY_US - MINUTE_US
    for path, keep in (("pad.w1.pip", 4), ("pad.w1.run", 6)):
        s = h.history.raw(h.history.resolve([path]), NOW - 20 * DAY_US, NOW)[0]
        assert s.rows and s.rows[0][0] >= NOW - keep * DAY_US
        hours, _ = h.history.aggregate(h.history.resolve([path]), NOW - 20 * DAY_US, NOW,
                                       HOUR_US, ("count",))
        counted = [r for r in hours[0].rows if r[1]]
        assert counted[0][0] >= NOW - keep * DAY_US - HOUR_US


def test_sqlite_retention(tmp_path: Any, request: pytest.FixtureRequest) -> None:
    from history_support import make_hist

    h = make_hist(f"sqlite:///{tmp_path / 'h.db'}",
                  _tags(pip={"retention_days": 2.0}, run={"retention_days": 5.0}))
    request.addfinalizer(h.store.engine.dispose)
    _fill(h, 8)
    gone = h.store.apply_retention(list(h.catalog.tags.values()), NOW, rollup_1m_days=1.0)
    assert gone > 0
    pip = h.history.raw(h.history.resolve(["pad.w1.pip"]), NOW - 20 * DAY_US, NOW)[0].rows
    run = h.history.raw(h.history.resolve(["pad.w1.run"]), NOW - 20 * DAY_US, NOW)[0].rows
    note = h.history.raw(h.history.resolve(["pad.w1.note"]), NOW - 20 * DAY_US, NOW)[0].rows
    assert pip[0][0] >= NOW - 2 * DAY_US and run[0][0] >= NOW - 5 * DAY_US
    assert note[0][0] < NOW - 7 * DAY_US  # default retention: a year


def test_timescaledb_compression_and_retention(tsdb_url: str, request: pytest.FixtureRequest
                                              ) -> None:
    from history_support import make_hist

    h = make_hist(tsdb_url, _tags())
    request.addfinalizer(h.store.engine.dispose)
    _fill(h, 10)
    span = (NOW - 11 * DAY_US, NOW)
    before = _history(h, *span)
    with h.store.engine.begin() as conn:
        chunks = conn.exec_driver_sql(
            "SELECT count(*) FROM show_chunks('campo_history')").scalar_one()
        assert chunks >= 10  # one-day chunks
        conn.exec_driver_sql("SELECT compress_chunk(c, if_not_compressed => true) "
                             "FROM show_chunks('campo_history', older_than => now() - "
                             "INTERVAL '2 days') c")
        compressed = conn.exec_driver_sql(
            "SELECT count(*) FROM timescaledb_information.chunks WHERE hypertable_name = "
            "'campo_history' AND is_compressed AND hypertable_schema = current_schema()"
        ).scalar_one()
    assert compressed >= 7
    assert _history(h, *span) == before
    # a replayed sample into a compressed chunk is still refused as a duplicate
    tags = h.history.resolve(["pad.w1.pip"])
    old = h.history.raw(tags, NOW - 9 * DAY_US, NOW - 8 * DAY_US)[0].rows[0]
    assert h.ingest.write([("pad.w1.pip", old[0], old[1], None, old[2])]) == 0
    # the retention policy (here 5 days) drops whole chunks when its job runs
    h.store.set_policies(5.0, 2.0)
    with h.store.engine.begin() as conn:
        job = conn.exec_driver_sql(
            "SELECT job_id FROM timescaledb_information.jobs WHERE proc_name = "
            "'policy_retention' AND hypertable_schema = current_schema()").scalar_one()
    with h.store.engine.connect() as conn:
        conn.exec_driver_sql(f"CALL run_job({job})")
        conn.commit()
    rows = h.history.raw(tags, NOW - 20 * DAY_US, NOW)[0].rows
    assert rows[0][0] >= NOW - 6 * DAY_US
