"""Where samples and rollups live: one :class:`Store` API over SQLite and PostgreSQL.

:func:`open_store` picks the backend from the engine: :class:`SqliteStore` (embedded
default), :class:`~engine.historian.pgstore.PgStore` (native daily partitions and compaction)
or :class:`~engine.historian.tsdb.TsdbStore` (TimescaleDB hypertable). The writer calls
:meth:`Store.write` (fast path, one transaction for samples and rollup deltas) and, when a
batch may already be stored (a replay), :meth:`Store.write_missing`, which inserts only the
absent samples and rebuilds the rollups they touch. Reads return rows as
:data:`~engine.historian.samples.Row` tuples per tag id.

Example::

    store = open_store(create_engine_for("sqlite:///data/campo.db"))
    store.create()
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from engine.db import platform
from engine.db.platform_ddl import timescaledb_version

from .rollups import WIDTHS_US, DeltaRow, Prev, rebuild_rows
from .samples import HOUR_US, HistTag, Row
from .tables import (
    ROLLUP_TABLES,
    SAMPLE_TABLE,
    block_table,
    day_table,
    rollup_tables,
    run_table,
    status_table,
    tag_table,
)

log = logging.getLogger(__name__)

SampleRow = tuple[int, int, float | None, str | None, int]
"""``(tag_id, ts_us, value, text, quality)``: a row to insert."""
ROLLUP_COLS = ("tag_id", "bucket", "count", "sum", "min", "max", "first", "first_ts", "last",
               "last_ts", "area", "covered")


class Duplicate(Exception):
    """A sample of the batch is stored already (nothing of the batch was written)."""


class Store:
    """Samples, rollups and tags in one database (the SQLite implementation)."""

    #: ``sqlite``, ``postgresql`` or ``timescaledb``
    kind = "sqlite"
    #: whether old samples are rewritten into compact blocks
    compacts = False

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # ------------------------------------------------------------------ schema

    def create(self) -> None:
        """Bring the platform tables (the historian's among them) to the newest revision."""
        platform.upgrade(self.engine)

    # ------------------------------------------------------------------ tags

    def load_tags(self, conn: Connection | None = None) -> dict[str, HistTag]:
        """Every historised tag (retired ones too), by path."""
        q = sa.select(tag_table.c.id, tag_table.c.path, tag_table.c.site, tag_table.c.kind,
                      tag_table.c.unit, tag_table.c.retention_days,
                      tag_table.c.compaction_days, tag_table.c.retired_at)
        if conn is None:
            with self.engine.connect() as c:
                rows = c.execute(q).all()
        else:
            rows = conn.execute(q).all()
        return {r.path: HistTag(r.id, r.path, r.site, r.kind, r.unit, r.retention_days,
                                r.compaction_days, r.retired_at is not None) for r in rows}

    # ------------------------------------------------------------------ SQL pieces

    def ts_param(self, us: int) -> Any:
        """A parameter compared with a ``ts``/``bucket`` column."""
        return us

    def ts_expr(self, column: str) -> str:
        """SQL giving a ``ts``/``bucket`` column as integer microseconds."""
        return column

    def ts_value(self, param: str) -> str:
        """SQL turning an integer-microseconds parameter into a ``ts`` value."""
        return param

    # ------------------------------------------------------------------ writes

    def write(self, rows: Sequence[SampleRow], deltas: dict[int, list[DeltaRow]],
              rebuild: dict[int, tuple[int, int]] | None = None) -> int:
        """Insert ``rows``, merge rollup ``deltas``, rebuild the ``rebuild`` spans (tag id ->
        first and last time) from samples: one transaction. Returns the samples added.

        Raises :class:`Duplicate` when a sample is already stored (the caller then uses
        :meth:`write_missing`).
        """
        try:
            with self.engine.begin() as conn:
                added = self._insert(conn, rows)
                self._merge_rollups(conn, deltas)
                for tag_id, (lo, hi) in (rebuild or {}).items():
                    self._rebuild(conn, tag_id, lo, hi)
        except sa.exc.IntegrityError as exc:
            raise Duplicate(str(exc.orig).splitlines()[0]) from None
        return added

    def _insert(self, conn: Connection, rows: Sequence[SampleRow]) -> int:
        if rows:
            conn.exec_driver_sql(
                f"INSERT INTO {SAMPLE_TABLE} (tag_id, ts, value, text, quality) "
                "VALUES (?, ?, ?, ?, ?)", list(rows))
        return len(rows)

    def _merge_rollups(self, conn: Connection, deltas: dict[int, list[DeltaRow]]) -> None:
        for width, rows in deltas.items():
            if rows:
                conn.exec_driver_sql(self._upsert_sql(ROLLUP_TABLES[width // 1_000_000]),
                                     [tuple(r) for r in rows])

    def _upsert_sql(self, table: str) -> str:
        ph = ", ".join(["?"] * len(ROLLUP_COLS))
        return (f"INSERT INTO {table} ({', '.join(ROLLUP_COLS)}) VALUES ({ph}) "
                + self._conflict_sql(table))

    def _conflict_sql(self, table: str) -> str:
        """``ON CONFLICT`` clause merging a delta row into a rollup row."""
        least, greatest = ("min", "max") if self.kind == "sqlite" else ("LEAST", "GREATEST")
        return (
            "ON CONFLICT (tag_id, bucket) DO UPDATE SET "
            f"count = {table}.count + excluded.count, sum = {table}.sum + excluded.sum, "
            f"min = {least}({table}.min, excluded.min), "
            f"max = {greatest}({table}.max, excluded.max), "
            f"first = CASE WHEN excluded.first_ts < {table}.first_ts THEN excluded.first "
            f"ELSE {table}.first END, "
            f"first_ts = {least}({table}.first_ts, excluded.first_ts), "
            f"last = CASE WHEN excluded.last_ts >= {table}.last_ts THEN excluded.last "
            f"ELSE {table}.last END, "
            f"last_ts = {greatest}({table}.last_ts, excluded.last_ts), "
            f"area = {table}.area + excluded.area, "
            f"covered = {table}.covered + excluded.covered")

    def write_missing(self, rows: Sequence[SampleRow]) -> list[SampleRow]:
        """Insert the rows not stored yet, rebuild the rollups they touch; return them."""
        with self.engine.begin() as conn:
            new = self._insert_missing(conn, rows)
            spans: dict[int, tuple[int, int]] = {}
            for tag_id, ts, value, _text, _q in new:
                if value is None:
                    continue
                lo, hi = spans.get(tag_id, (ts, ts))
                spans[tag_id] = (min(lo, ts), max(hi, ts))
            for tag_id, (lo, hi) in spans.items():
                self._rebuild(conn, tag_id, lo, hi)
        return new

    def _insert_missing(self, conn: Connection, rows: Sequence[SampleRow]) -> list[SampleRow]:
        new: list[SampleRow] = []
        for row in rows:
            res = conn.exec_driver_sql(
                f"INSERT INTO {SAMPLE_TABLE} (tag_id, ts, value, text, quality) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (tag_id, ts) DO NOTHING", row)
            if res.rowcount:
                new.append(row)
        return new

    # ------------------------------------------------------------------ rollup rebuild

    def rebuild(self, tag_ids: Iterable[int], start: int, end: int) -> None:
        """Recompute both rollup tables of ``tag_ids`` over ``[start, end]`` from samples."""
        with self.engine.begin() as conn:
            for tag_id in tag_ids:
                self._rebuild(conn, tag_id, start, end)

    def _rebuild(self, conn: Connection, tag_id: int, start: int, end: int) -> None:
        lo = start - start % HOUR_US
        nxt = self._after(conn, [tag_id], end + 1, numeric=True).get(tag_id)
        hi = max(end, nxt[0] if nxt is not None else end)
        hi = hi - hi % HOUR_US + HOUR_US
        prev_row = self._before(conn, [tag_id], lo, numeric=True).get(tag_id)
        prev: Prev | None = None if prev_row is None else (prev_row[0], prev_row[1] or 0.0)
        samples = [(r[0], r[1]) for r in self._raw(conn, [tag_id], lo, hi).get(tag_id, [])
                   if r[1] is not None]
        for width in WIDTHS_US:
            table = ROLLUP_TABLES[width // 1_000_000]
            conn.execute(sa.text(
                f"DELETE FROM {table} WHERE tag_id = :t AND bucket >= {self.ts_value(':lo')} "
                f"AND bucket < {self.ts_value(':hi')}"), {"t": tag_id, "lo": lo, "hi": hi})
            rows = rebuild_rows(tag_id, samples, prev, width)
            self._merge_rollups(conn, {width: rows})

    def last_values(self, tag_ids: Sequence[int]) -> dict[int, Prev]:
        """Each tag's last numeric sample, from the hour rollups (the writer's state)."""
        if not tag_ids:
            return {}
        table = ROLLUP_TABLES[3600]
        out: dict[int, Prev] = {}
        with self.engine.connect() as conn:
            for chunk in _chunks(list(tag_ids), 500):
                ids = ", ".join(str(int(t)) for t in chunk)
                rows = conn.exec_driver_sql(
                    f"SELECT r.tag_id, r.last_ts, r.last FROM {table} r JOIN "
                    f"(SELECT tag_id, max(bucket) AS b FROM {table} WHERE tag_id IN ({ids}) "
                    "GROUP BY tag_id) m ON m.tag_id = r.tag_id AND m.b = r.bucket").all()
                out.update({int(t): (int(ts), float(v)) for t, ts, v in rows})
        return out

    # ------------------------------------------------------------------ reads

    def raw(self, tag_ids: Sequence[int], start: int, end: int) -> dict[int, list[Row]]:
        """Samples of ``tag_ids`` in ``[start, end)``, sorted by time, per tag id."""
        with self.engine.connect() as conn:
            return self._raw(conn, tag_ids, start, end)

    def _raw(self, conn: Connection, tag_ids: Sequence[int], start: int, end: int
             ) -> dict[int, list[Row]]:
        out: dict[int, list[Row]] = {t: [] for t in tag_ids}
        if not tag_ids:
            return out
        ids = ", ".join(str(int(t)) for t in tag_ids)
        rows = conn.execute(sa.text(
            f"SELECT tag_id, {self.ts_expr('ts')}, value, text, quality FROM {SAMPLE_TABLE} "
            f"WHERE tag_id IN ({ids}) AND ts >= {self.ts_value(':s')} "
            f"AND ts < {self.ts_value(':e')} ORDER BY tag_id, ts"), {"s": start, "e": end})
        for tag_id, ts, value, text, quality in rows:
            out[tag_id].append((int(ts), value, text, quality))
        return out

    def count(self, tag_ids: Sequence[int], start: int, end: int) -> int:
        """How many samples ``raw`` would return (an upper bound with compact blocks)."""
        if not tag_ids:
            return 0
        ids = ", ".join(str(int(t)) for t in tag_ids)
        with self.engine.connect() as conn:
            return int(conn.execute(sa.text(
                f"SELECT count(*) FROM {SAMPLE_TABLE} WHERE tag_id IN ({ids}) "
                f"AND ts >= {self.ts_value(':s')} AND ts < {self.ts_value(':e')}"),
                {"s": start, "e": end}).scalar_one())

    def before(self, tag_ids: Sequence[int], t: int, numeric: bool = False) -> dict[int, Row]:
        """Each tag's last sample before ``t`` (with a number when ``numeric``)."""
        with self.engine.connect() as conn:
            return self._before(conn, tag_ids, t, numeric)

    def after(self, tag_ids: Sequence[int], t: int, numeric: bool = False) -> dict[int, Row]:
        """Each tag's first sample at or after ``t``."""
        with self.engine.connect() as conn:
            return self._after(conn, tag_ids, t, numeric)

    def _before(self, conn: Connection, tag_ids: Sequence[int], t: int, numeric: bool
                ) -> dict[int, Row]:
        return self._edge(conn, tag_ids, t, "<", "DESC", numeric)

    def _after(self, conn: Connection, tag_ids: Sequence[int], t: int, numeric: bool
               ) -> dict[int, Row]:
        return self._edge(conn, tag_ids, t, ">=", "ASC", numeric)

    def _edge(self, conn: Connection, tag_ids: Sequence[int], t: int, op: str, order: str,
              numeric: bool) -> dict[int, Row]:
        out: dict[int, Row] = {}
        extra = " AND value IS NOT NULL" if numeric else ""
        for tag_id in tag_ids:
            row = conn.execute(sa.text(
                f"SELECT {self.ts_expr('ts')}, value, text, quality FROM {SAMPLE_TABLE} "
                f"WHERE tag_id = :id AND ts {op} {self.ts_value(':t')}{extra} "
                f"ORDER BY ts {order} LIMIT 1"), {"id": tag_id, "t": t}).first()
            if row is not None:
                out[tag_id] = (int(row[0]), row[1], row[2], row[3])
        return out

    def rollup_rows(self, width: int, tag_ids: Sequence[int], start: int, end: int
                    ) -> dict[int, list[DeltaRow]]:
        """Rollup rows (``width`` in µs) of ``tag_ids`` with buckets in ``[start, end)``."""
        table = ROLLUP_TABLES[width // 1_000_000]
        out: dict[int, list[DeltaRow]] = {t: [] for t in tag_ids}
        if not tag_ids:
            return out
        ids = ", ".join(str(int(t)) for t in tag_ids)
        cols = ", ".join(self.ts_expr(c) if c == "bucket" else c for c in ROLLUP_COLS)
        with self.engine.connect() as conn:
            rows = conn.execute(sa.text(
                f"SELECT {cols} FROM {table} WHERE tag_id IN ({ids}) "
                f"AND bucket >= {self.ts_value(':s')} AND bucket < {self.ts_value(':e')} "
                "ORDER BY tag_id, bucket"), {"s": start, "e": end})
            for r in rows:
                out[r[0]].append([r[0], int(r[1]), *r[2:]])
        return out

    # ------------------------------------------------------------------ maintenance

    def apply_retention(self, tags: Iterable[HistTag], now: int, rollup_1m_days: float
                        ) -> int:
        """Delete samples and rollups older than each tag's retention; return samples gone.

        Tags are grouped by retention: a few statements whatever the number of tags.
        """
        groups: dict[float, list[int]] = {}
        for tag in tags:
            groups.setdefault(tag.retention_days, []).append(tag.id)
        gone = 0
        horizon_1m = now - int(rollup_1m_days * 86400 * 1_000_000)
        with self.engine.begin() as conn:
            for days, ids in sorted(groups.items()):
                cutoff = now - int(days * 86400 * 1_000_000)
                for chunk in _chunks(ids, 1000):
                    gone += self._delete_before(conn, chunk, cutoff)
                    listed = ", ".join(str(int(t)) for t in chunk)
                    for width in WIDTHS_US:
                        keep = max(cutoff, horizon_1m) if width == WIDTHS_US[0] else cutoff
                        conn.execute(sa.text(
                            f"DELETE FROM {ROLLUP_TABLES[width // 1_000_000]} WHERE tag_id IN "
                            f"({listed}) AND bucket < {self.ts_value(':c')}"), {"c": keep})
        return gone

    def _delete_before(self, conn: Connection, tag_ids: Sequence[int], cutoff: int) -> int:
        listed = ", ".join(str(int(t)) for t in tag_ids)
        res = conn.execute(sa.text(
            f"DELETE FROM {SAMPLE_TABLE} WHERE tag_id IN ({listed}) AND ts < "
            f"{self.ts_value(':c')}"), {"c": cutoff})
        return int(res.rowcount or 0)

    def maintain(self, tags: Sequence[HistTag], now: int) -> dict[str, int]:
        """Periodic work besides retention (partitions, compaction): none on SQLite."""
        return {}

    def prepare(self, days: Iterable[int]) -> None:
        """Make sure samples of these days (``YYYYMMDD``) can be inserted."""

    def size_bytes(self) -> dict[str, int]:
        """Bytes the historian's tables take (PostgreSQL; SQLite cannot tell per table)."""
        return {}

    # ------------------------------------------------------------------ status

    def save_status(self, node: str, status: dict[str, Any], now: Any) -> None:
        """Keep the writer's figures for web processes that have no writer."""
        with self.engine.begin() as conn:
            updated = conn.execute(status_table.update().where(status_table.c.node == node)
                                   .values(updated_at=now, status=status)).rowcount
            if not updated:
                conn.execute(status_table.insert().values(node=node, updated_at=now,
                                                          status=status))

    def load_status(self) -> list[dict[str, Any]]:
        """Every writer's last saved figures."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(status_table.c.node, status_table.c.updated_at,
                                          status_table.c.status)).all()
        return [{"node": r.node, "saved_at": r.updated_at.isoformat(), **r.status}
                for r in rows]


def _chunks(items: list[int], n: int) -> Iterable[list[int]]:
    for i in range(0, len(items), n):
        yield items[i:i + n]


def open_store(engine: Engine) -> Store:
    """The store for ``engine``'s database.

    SQLite's; on PostgreSQL the TimescaleDB store when ``campo_history`` is a hypertable (or,
    before it exists, when the extension is installed: the table's create hook makes it
    one), else native daily partitions.
    """
    if engine.dialect.name == "sqlite":
        return Store(engine)
    if engine.dialect.name != "postgresql":
        raise ValueError(f"the historian runs on SQLite or PostgreSQL, not {engine.dialect.name}")
    from .pgstore import PgStore
    from .tsdb import TsdbStore

    with engine.connect() as conn:
        version = timescaledb_version(conn)
        hyper = version is not None and conn.exec_driver_sql(
            "SELECT 1 FROM timescaledb_information.hypertables WHERE hypertable_name = "
            f"'{SAMPLE_TABLE}' AND hypertable_schema = current_schema()").first() is not None
        exists = sa.inspect(conn).has_table(SAMPLE_TABLE)
    if hyper or (version is not None and not exists):
        return TsdbStore(engine)
    return PgStore(engine)


__all__ = ["ROLLUP_COLS", "Duplicate", "SampleRow", "Store", "block_table", "day_table",
           "open_store", "run_table", "rollup_tables"]
