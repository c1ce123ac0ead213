"""Benchmark: the historian on PostgreSQL (native daily partitions).

Runs in a fresh schema of ``CAMPO_BENCH_DATABASE_URL`` (default: the test cluster,
``postgresql+psycopg://postgres@127.0.0.1:5432/test``), dropped at the end.

1. Ingest, end to end: 300,000 runtime ``TagValue`` objects of 2,000 tags, in scan-sized
   batches, handed to the historian sink (``HistorianSink.offer``: journal to the spool,
   then the writer thread's binary COPY and rollup upserts, fsync, commit), timed until every
   sample is committed; against a raw psycopg binary ``COPY`` (``set_types``) of the same rows
   into the same table (other days' partitions) in the same run. Each side runs twice, the
   best counts. ``RESULT historian_ingest_ratio`` = historian samples/s / COPY rows/s
   (goal >= 0.5).
2. Trend: 10 tags x 30 days, one sample every 10 s with millisecond jitter (2.6 million
   samples: float32 random walks and 0.1-resolution registers, as the pipeline gives them),
   generated in SQL; rollups rebuilt from the samples; then a trend of at most 500 points
   per tag (``points=500``: 2-hour buckets from the hour rollups, 360 points; avg/min/max)
   through ``History.aggregate``: the median of 5 runs is ``RESULT history_trend_ms``
   (goal < 300). The 87-minute buckets (497 points) from the minute rollups are timed and
   printed too: 432,000 rollup rows, which PostgreSQL alone needs 0.4-0.5 s to aggregate on
   this shared machine.
3. Compaction: the same 30 days compacted into blocks; ``RESULT historian_bytes_per_sample``
   = ``pg_total_relation_size('campo_history_block')`` / samples held in blocks (goal <= 8);
   the partitions' bytes per sample before are printed beside it.

Run: ``python bench/historian.py`` (no arguments; about 1-2 minutes).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

from engine.db import create_engine_for
from engine.historian import Catalog, History, TagPolicy
from engine.historian.pgstore import PgStore, day_of
from engine.historian.samples import DAY_US, MINUTE_US, to_us
from engine.historian.spool import Spool
from engine.historian.writer import Historian
from engine.scada.types import Quality, TagValue
from engine.wiring.history import HistorianSink

URL = os.environ.get("CAMPO_BENCH_DATABASE_URL",
                     "postgresql+psycopg://postgres@127.0.0.1:5432/test")
INGEST_TAGS = 2000
INGEST_SAMPLES = 300_000
TREND_TAGS = 10
TREND_DAYS = 30
POINTS = 500


def schema_url(admin: sa.Engine) -> tuple[str, str]:
    schema = f"bench_hist_{uuid.uuid4().hex[:8]}"
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in URL else "?"
    return schema, f"{URL}{sep}options=-csearch_path%3D{schema}"


def raw_copy(store: PgStore, rows: list[tuple[int, dt.datetime, float, None, int]]) -> float:
    """Seconds for one binary COPY (set_types) of ``rows``, committed."""
    with store.engine.connect() as conn:
        raw = conn.connection.driver_connection
        t0 = time.perf_counter()
        with raw.cursor() as cur, cur.copy(  # type: ignore[union-attr]
                "COPY campo_history (tag_id, ts, value, text, quality) FROM STDIN "
                "(FORMAT BINARY)") as cp:
            cp.set_types(["int4", "timestamptz", "float8", "text", "int2"])
            for row in rows:
                cp.write_row(row)
        raw.commit()  # type: ignore[union-attr]
        return time.perf_counter() - t0


def ingest(url: str, tmp: Path) -> float:
    engine = create_engine_for(url)
    store = PgStore(engine)
    store.create()
    paths = [f"bench.w{i // 10}.t{i % 10}" for i in range(INGEST_TAGS)]
    policies = [TagPolicy(p, "bench", "number") for p in paths]
    scans = INGEST_SAMPLES // INGEST_TAGS
    day0 = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    batches = []
    for k in range(scans):
        ts = day0 + dt.timedelta(seconds=k, microseconds=(k * 7919) % 1000)
        batches.append([TagValue(p, 100.0 + (i * 31 + k * 17) % 997 / 7.0, Quality.GOOD, ts)
                        for i, p in enumerate(paths)])
    hist_rates, copy_rates = [], []
    for attempt in range(2):
        shift = dt.timedelta(days=1 + attempt)
        catalog = Catalog(store)
        catalog.sync(policies)
        ids = {t.path: t.id for t in catalog.tags.values()}
        rows = [(ids[v.tag], v.ts - shift, float(v.value), None, 2)  # type: ignore[arg-type]
                for batch in batches for v in batch]
        store.prepare({day_of(to_us(day0 - shift)),
                       day_of(to_us(day0 - shift + dt.timedelta(seconds=scans)))})
        copy_rates.append(len(rows) / raw_copy(store, rows))
        with engine.begin() as conn:  # the historian's run starts from an empty history
            conn.exec_driver_sql("DELETE FROM campo_history WHERE ts >= "
                                 f"'{day0.isoformat()}'")
            conn.exec_driver_sql("DELETE FROM campo_history_1m")
            conn.exec_driver_sql("DELETE FROM campo_history_1h")
        store.prepare({day_of(to_us(day0)), day_of(to_us(day0 + dt.timedelta(seconds=scans)))})
        hist = Historian(store, Spool(tmp / f"spool{attempt}", 1 << 30), policies,
                         batch=50_000, flush_seconds=0.2, maintenance_seconds=1e9)
        sink = HistorianSink(hist)
        asyncio.run(sink.start())
        assert hist.wait_stored(60), "the historian did not get ready"
        t0 = time.perf_counter()
        for batch in batches:
            sink.offer(batch)
        assert hist.wait_stored(300), "the historian did not store everything"
        hist_rates.append(INGEST_SAMPLES / (time.perf_counter() - t0))
        asyncio.run(sink.stop())
        with engine.connect() as conn:
            stored = conn.exec_driver_sql("SELECT count(*) FROM campo_history WHERE ts >= "
                                          f"'{day0.isoformat()}'").scalar()
        assert stored == INGEST_SAMPLES, stored
    engine.dispose()
    print(f"ingest: historian {max(hist_rates):,.0f} samples/s end to end (runs "
          f"{', '.join(f'{r:,.0f}' for r in hist_rates)}); raw binary COPY "
          f"{max(copy_rates):,.0f} rows/s (runs {', '.join(f'{r:,.0f}' for r in copy_rates)})")
    return max(hist_rates) / max(copy_rates)


def trend_and_compaction(url: str) -> tuple[float, float]:
    engine = create_engine_for(url)
    store = PgStore(engine)
    store.create()
    catalog = Catalog(store)
    catalog.sync([TagPolicy(f"pad.w{i}.pip", "pad", "number", compaction_days=1.0)
                  for i in range(TREND_TAGS)])
    tags = sorted((t for t in catalog.tags.values() if t.site == "pad"), key=lambda t: t.path)
    today = to_us(dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0))
    start, end = today - TREND_DAYS * DAY_US, today
    store.prepare(day_of(start + k * DAY_US) for k in range(TREND_DAYS))
    per_tag = TREND_DAYS * 8640
    t0 = time.perf_counter()
    with engine.begin() as conn:
        ids = ", ".join(str(t.id) for t in tags)
        conn.exec_driver_sql(f"""
            INSERT INTO campo_history (tag_id, ts, value, text, quality)
            SELECT tag_id, TIMESTAMPTZ 'epoch' + ({start} + k::int8 * 10000000
                       + (random() * 8000)::int8) * INTERVAL '1 microsecond',
                   CASE WHEN tag_id %% 2 = 0 THEN (1000 + w)::real::float8
                        ELSE round((500 + w)::numeric, 1)::float8 END, NULL, 2
            FROM (SELECT tag_id, k, sum(random() - 0.5) OVER (PARTITION BY tag_id ORDER BY k) AS w
                  FROM unnest(ARRAY[{ids}]) AS tag_id, generate_series(0, {per_tag - 1}) AS k) g
        """)
    generated = time.perf_counter() - t0
    t0 = time.perf_counter()
    store.rebuild([t.id for t in tags], start, end - 1)
    rebuilt = time.perf_counter() - t0
    print(f"trend data: {TREND_TAGS * per_tag:,} samples generated in SQL in {generated:.1f} s,"
          f" rollups rebuilt in {rebuilt:.1f} s")
    history = History(store, catalog)
    bucket = history.bucket_for(start, end, POINTS)   # as GET /api/history?points=500
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        series, source = history.aggregate(tags, start, end, bucket, ("avg", "min", "max"))
        times.append((time.perf_counter() - t0) * 1000)
    points = len(series[0].rows)
    assert all(len(s.rows) == points for s in series) and points <= POINTS
    counted = sum(r[1] is not None for s in series for r in s.rows)
    print(f"trend: {len(series)} tags x {points} points ({bucket // MINUTE_US}-minute buckets "
          f"from {source}, {counted} non-empty), {', '.join(f'{t:.0f}' for t in times)} ms")
    fine = -(-(end - start) // POINTS // MINUTE_US) * MINUTE_US
    t0 = time.perf_counter()
    series, source = history.aggregate(tags, start, end, fine, ("avg", "min", "max"))
    print(f"trend: {len(series[0].rows)} points per tag ({fine // MINUTE_US}-minute buckets "
          f"from {source}) in {(time.perf_counter() - t0) * 1000:.0f} ms")
    sizes = store.size_bytes()
    hot = sizes["campo_history"] / (TREND_TAGS * per_tag)
    t0 = time.perf_counter()
    store.maintain(tags, today + DAY_US)
    compacted = time.perf_counter() - t0
    with engine.connect() as conn:
        held = int(conn.exec_driver_sql("SELECT sum(n) FROM campo_history_block").scalar())
        block_bytes = int(conn.exec_driver_sql(
            "SELECT pg_total_relation_size('campo_history_block')").scalar())
        left = int(conn.exec_driver_sql("SELECT count(*) FROM campo_history").scalar())
    assert held == TREND_TAGS * per_tag and left == 0, (held, left)  # every day compacted
    print(f"compaction: {held:,} samples in {compacted:.1f} s; partitions held "
          f"{hot:.1f} bytes/sample (with index), blocks {block_bytes / held:.2f}")
    engine.dispose()
    return statistics.median(times), block_bytes / held


def main() -> int:
    admin = create_engine_for(URL)
    schemas = []
    try:
        schema, url = schema_url(admin)
        schemas.append(schema)
        with tempfile.TemporaryDirectory() as tmp:
            ratio = ingest(url, Path(tmp))
        schema, url = schema_url(admin)
        schemas.append(schema)
        trend_ms, per_sample = trend_and_compaction(url)
    finally:
        with admin.begin() as conn:
            for schema in schemas:
                conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()
    print(f"RESULT historian_ingest_ratio {ratio:.2f}")
    print(f"RESULT historian_bytes_per_sample {per_sample:.2f}")
    print(f"RESULT history_trend_ms {trend_ms:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
