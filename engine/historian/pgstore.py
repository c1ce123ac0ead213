"""The PostgreSQL store: daily partitions, binary COPY, compaction into blocks.

Samples go to ``campo_history``, partitioned by day (``campo_history_pYYYYMMDD``); a
partition is created before its first row arrives (ahead of time for the coming days, and on
demand for late rows). Ingest is one binary COPY built here with :mod:`struct` (no per-value
Python adaptation) plus one upsert of the rollup deltas, in one transaction.

Compaction: a partition whose day is older than a tag's compaction age has that tag's
samples rewritten into ``campo_history_block`` rows (one per tag and hour,
:mod:`engine.historian.codec`); when every tag of the partition is done the partition is
dropped, else the tag's rows are deleted from it. ``campo_history_tag.compacted_until``
says up to when a tag may have blocks: a late sample before it is merged into its block (or
into a re-created partition when its hour has no block), so a sample is never in both.
Retention drops whole partitions older than the longest retention and deletes the rows of
tags with a shorter one.
"""

from __future__ import annotations

import datetime as dt
import logging
import struct
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg
import sqlalchemy as sa
from psycopg.adapt import Loader
from sqlalchemy.engine import Connection

from engine.db import platform

from . import codec
from .rollups import DeltaRow
from .samples import DAY_US, HOUR_US, US, HistTag, Row, from_us
from .store import ROLLUP_COLS, Duplicate, SampleRow, Store
from .tables import BLOCK_TABLE, DAY_TABLE, ROLLUP_TABLES, SAMPLE_TABLE, TAG_TABLE

log = logging.getLogger(__name__)

PG_EPOCH_US = 946_684_800 * US
_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_TRAILER = struct.pack(">h", -1)
_NUM = struct.Struct(">hiiiqidiih")
_NULL = struct.Struct(">hiiiqiiih")
_TEXT_HEAD = struct.Struct(">hiiiqii")
_TEXT_TAIL = struct.Struct(">ih")
#: partitions created ahead of today
DAYS_AHEAD = 2
_TS = "(EXTRACT(EPOCH FROM {c}) * 1000000)::int8"
_VAL = "(TIMESTAMPTZ 'epoch' + {p} * INTERVAL '1 microsecond')"


_Q = struct.Struct(">q")


class _MicrosLoader(Loader):
    """Binary ``timestamptz`` as integer µs since 1970 (no datetime, no numeric maths)."""

    format = psycopg.pq.Format.BINARY

    def load(self, data: Any) -> int:
        return int(_Q.unpack(data)[0]) + PG_EPOCH_US


def micros_cursor(conn: Connection) -> Any:
    """A binary psycopg cursor on ``conn`` reading ``timestamptz`` as µs."""
    raw = conn.connection.driver_connection
    cur = raw.cursor(binary=True)  # type: ignore[union-attr]
    cur.adapters.register_loader("timestamptz", _MicrosLoader)
    return cur


def copy_payload(rows: Iterable[SampleRow]) -> bytes:
    """A binary COPY stream of sample rows (``tag_id, ts, value, text, quality``)."""
    num, null, th, tt = _NUM.pack, _NULL.pack, _TEXT_HEAD.pack, _TEXT_TAIL.pack
    parts = [_HEADER]
    add = parts.append
    for tag_id, ts, value, text, quality in rows:
        if value is not None:
            add(num(5, 4, tag_id, 8, ts - PG_EPOCH_US, 8, value, -1, 2, quality))
        elif text is None:
            add(null(5, 4, tag_id, 8, ts - PG_EPOCH_US, -1, -1, 2, quality))
        else:
            b = text.encode()
            add(th(5, 4, tag_id, 8, ts - PG_EPOCH_US, -1, len(b)))
            add(b)
            add(tt(2, quality))
    add(_TRAILER)
    return b"".join(parts)


def day_of(us: int) -> int:
    """``YYYYMMDD`` of the UTC day holding ``us``."""
    d = from_us(us - us % DAY_US)
    return d.year * 10000 + d.month * 100 + d.day


def _days(rows: Iterable[SampleRow]) -> set[int]:
    """The days (``YYYYMMDD``) rows fall on (integer maths first: rows are many, days few)."""
    return {day_of(d * DAY_US) for d in {r[1] // DAY_US for r in rows}}


def day_start(day: int) -> int:
    """Microseconds at the start of day ``YYYYMMDD``."""
    d = dt.datetime(day // 10000, day // 100 % 100, day % 100, tzinfo=dt.UTC)
    return round(d.timestamp()) * US


class PgStore(Store):
    """PostgreSQL with native daily partitions."""

    kind = "postgresql"
    compacts = True

    def __init__(self, engine: Any) -> None:
        super().__init__(engine)
        self._days: set[int] = set()
        #: tag id -> compacted_until (µs)
        self._frontier: dict[int, int] = {}

    # ------------------------------------------------------------------ schema

    def create(self) -> None:
        platform.upgrade(self.engine)
        self.refresh()

    def refresh(self) -> None:
        """Reload the partitions and compaction frontiers (after a failure or compaction)."""
        with self.engine.connect() as conn:
            self._days = set(self.partitions(conn))
            rows = conn.exec_driver_sql(
                f"SELECT id, compacted_until FROM {TAG_TABLE} "
                "WHERE compacted_until IS NOT NULL").all()
        self._frontier = {int(i): int(c) for i, c in rows}

    def partitions(self, conn: Connection) -> list[int]:
        """Days (``YYYYMMDD``) that have a partition."""
        rows = conn.exec_driver_sql(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            f"WHERE i.inhparent = '{SAMPLE_TABLE}'::regclass").all()
        return sorted(int(r[0].rsplit("_p", 1)[1]) for r in rows)

    def prepare(self, days: Iterable[int]) -> None:
        missing = sorted(set(days) - self._days)
        if not missing:
            return
        with self.engine.begin() as conn:
            for day in missing:
                start = from_us(day_start(day))
                end = start + dt.timedelta(days=1)
                conn.exec_driver_sql(
                    f"CREATE TABLE IF NOT EXISTS {SAMPLE_TABLE}_p{day} PARTITION OF "
                    f"{SAMPLE_TABLE} FOR VALUES FROM ('{start.isoformat()}') "
                    f"TO ('{end.isoformat()}')")
        self._days.update(missing)

    # ------------------------------------------------------------------ SQL pieces

    def ts_param(self, us: int) -> Any:
        return from_us(us)

    def ts_expr(self, column: str) -> str:
        return _TS.format(c=column)

    def ts_value(self, param: str) -> str:
        return _VAL.format(p=param)

    # ------------------------------------------------------------------ writes

    def _split_late(self, rows: Sequence[SampleRow]) -> tuple[list[SampleRow], list[SampleRow]]:
        frontier = self._frontier
        if not frontier:
            return list(rows), []
        hot: list[SampleRow] = []
        late: list[SampleRow] = []
        for r in rows:
            f = frontier.get(r[0])
            (late if f is not None and r[1] < f else hot).append(r)
        return hot, late

    def _insert(self, conn: Connection, rows: Sequence[SampleRow]) -> int:
        hot, late = self._split_late(rows)
        added = len(self._insert_late(conn, late)) if late else 0
        if hot:
            self.prepare(_days(hot))
            raw = conn.connection.driver_connection
            try:
                with raw.cursor() as cur, cur.copy(  # type: ignore[union-attr]
                        f"COPY {SAMPLE_TABLE} (tag_id, ts, value, text, quality) FROM STDIN "
                        "(FORMAT BINARY)") as cp:
                    cp.write(copy_payload(hot))
            except psycopg.errors.UniqueViolation as exc:
                raise Duplicate(str(exc).splitlines()[0]) from None
        return added + len(hot)

    def _insert_missing(self, conn: Connection, rows: Sequence[SampleRow]) -> list[SampleRow]:
        hot, late = self._split_late(rows)
        new = self._insert_late(conn, late) if late else []
        if not hot:
            return new
        self.prepare(_days(hot))
        raw = conn.connection.driver_connection
        with raw.cursor() as cur:  # type: ignore[union-attr]
            cur.execute("CREATE TEMP TABLE IF NOT EXISTS campo_history_in (tag_id integer, "
                        "ts timestamptz, value double precision, text text, quality smallint)"
                        " ON COMMIT DELETE ROWS")
            with cur.copy("COPY campo_history_in FROM STDIN (FORMAT BINARY)") as cp:
                cp.write(copy_payload(hot))
            cur.execute(
                f"INSERT INTO {SAMPLE_TABLE} SELECT * FROM campo_history_in "
                f"ON CONFLICT (tag_id, ts) DO NOTHING RETURNING tag_id, {_TS.format(c='ts')}, "
                "value, text, quality")
            new += [(int(t), int(ts), v, x, int(q)) for t, ts, v, x, q in cur.fetchall()]
            cur.execute("DELETE FROM campo_history_in")
        return new

    def _insert_late(self, conn: Connection, rows: Sequence[SampleRow]) -> list[SampleRow]:
        """Rows before a tag's compaction frontier: into its block, or its partition."""
        by_hour: dict[tuple[int, int], list[SampleRow]] = {}
        for r in rows:
            by_hour.setdefault((r[0], r[1] - r[1] % HOUR_US), []).append(r)
        new: list[SampleRow] = []
        loose: list[SampleRow] = []
        for (tag_id, hour), group in sorted(by_hour.items()):
            block = conn.execute(sa.text(
                f"SELECT data FROM {BLOCK_TABLE} WHERE tag_id = :t AND hour = "
                f"{_VAL.format(p=':h')} FOR UPDATE"), {"t": tag_id, "h": hour}).scalar()
            if block is None:
                loose += group
                continue
            have = {r[0]: r for r in codec.decode(block)}
            added = [r for r in group if r[1] not in have]
            if not added:
                continue
            for r in added:
                have[r[1]] = (r[1], r[2], r[3], r[4])
            merged = [have[t] for t in sorted(have)]
            conn.execute(sa.text(
                f"UPDATE {BLOCK_TABLE} SET data = :d, n = :n, first_ts = :f, last_ts = :l "
                f"WHERE tag_id = :t AND hour = {_VAL.format(p=':h')}"),
                {"d": codec.encode(merged), "n": len(merged), "f": merged[0][0],
                 "l": merged[-1][0], "t": tag_id, "h": hour})
            new += added
        if loose:
            saved, self._frontier = self._frontier, {}
            try:
                new += self._insert_missing(conn, loose)
            finally:
                self._frontier = saved
        return new

    def _merge_rollups(self, conn: Connection, deltas: dict[int, list[DeltaRow]]) -> None:
        if not any(deltas.values()):
            return
        raw = conn.connection.driver_connection
        with raw.cursor() as cur:  # type: ignore[union-attr]
            cur.execute(
                "CREATE TEMP TABLE IF NOT EXISTS campo_history_rin (tag_id integer, "
                "bucket bigint, count integer, sum float8, min float8, max float8, "
                "first float8, first_ts bigint, last float8, last_ts bigint, area float8, "
                "covered float8) ON COMMIT DELETE ROWS")
            for width, rows in deltas.items():
                if not rows:
                    continue
                table = ROLLUP_TABLES[width // US]
                with cur.copy("COPY campo_history_rin FROM STDIN (FORMAT BINARY)") as cp:
                    cp.set_types(["int4", "int8", "int4", "float8", "float8", "float8",
                                  "float8", "int8", "float8", "int8", "float8", "float8"])
                    for r in rows:
                        cp.write_row(r)
                cols = ", ".join(ROLLUP_COLS)
                sel = cols.replace("bucket", _VAL.format(p="bucket"), 1)
                cur.execute(f"INSERT INTO {table} ({cols}) SELECT {sel} FROM campo_history_rin "
                            + self._conflict_sql(table))
                cur.execute("DELETE FROM campo_history_rin")

    # ------------------------------------------------------------------ reads

    def _raw(self, conn: Connection, tag_ids: Sequence[int], start: int, end: int
             ) -> dict[int, list[Row]]:
        out: dict[int, list[Row]] = {t: [] for t in tag_ids}
        if tag_ids:
            with micros_cursor(conn) as cur:
                cur.execute(
                    f"SELECT tag_id, ts, value, text, quality FROM {SAMPLE_TABLE} WHERE "
                    f"tag_id = ANY(%s) AND ts >= {_VAL.format(p='%s')} AND ts < "
                    f"{_VAL.format(p='%s')} ORDER BY tag_id, ts", (list(tag_ids), start, end))
                for tag_id, ts, value, text, quality in cur:
                    out[tag_id].append((ts, value, text, quality))
        if tag_ids:  # blocks are looked up always: another process may have compacted
            for tag_id, rows in self._block_rows(conn, tag_ids, start, end).items():
                out[tag_id] = sorted(out[tag_id] + rows) if out[tag_id] else rows
        return out

    def _block_rows(self, conn: Connection, tag_ids: Sequence[int], start: int, end: int
                    ) -> dict[int, list[Row]]:
        ids = ", ".join(str(int(t)) for t in tag_ids)
        out: dict[int, list[Row]] = {}
        blocks = conn.execute(sa.text(
            f"SELECT tag_id, data FROM {BLOCK_TABLE} WHERE tag_id IN ({ids}) "
            f"AND hour >= {_VAL.format(p=':s')} AND hour < {_VAL.format(p=':e')} "
            "ORDER BY tag_id, hour"), {"s": start - start % HOUR_US, "e": end})
        for tag_id, data in blocks:
            rows = [r for r in codec.decode(data) if start <= r[0] < end]
            out.setdefault(tag_id, []).extend(rows)
        return out

    def count(self, tag_ids: Sequence[int], start: int, end: int) -> int:
        n = super().count(tag_ids, start, end)
        if tag_ids:
            ids = ", ".join(str(int(t)) for t in tag_ids)
            with self.engine.connect() as conn:
                n += int(conn.execute(sa.text(
                    f"SELECT coalesce(sum(n), 0) FROM {BLOCK_TABLE} WHERE tag_id IN ({ids}) "
                    f"AND hour >= {_VAL.format(p=':s')} AND hour < {_VAL.format(p=':e')}"),
                    {"s": start - start % HOUR_US, "e": end}).scalar_one())
        return n

    def _edge(self, conn: Connection, tag_ids: Sequence[int], t: int, op: str, order: str,
              numeric: bool) -> dict[int, Row]:
        out = super()._edge(conn, tag_ids, t, op, order, numeric)
        for tag_id in tag_ids:
            found = self._block_edge(conn, tag_id, t, op, numeric)
            old = out.get(tag_id)
            if found is not None and (old is None or (
                    found[0] < old[0] if op == ">=" else found[0] > old[0])):
                out[tag_id] = found
        return out

    def _block_edge(self, conn: Connection, tag_id: int, t: int, op: str, numeric: bool
                    ) -> Row | None:
        """The last block row before ``t`` (``<``) or the first at or after it (``>=``)."""
        bound = t if op == "<" else t - t % HOUR_US
        cmp, order = ("<", "DESC") if op == "<" else (">=", "ASC")
        while True:
            blocks = conn.execute(sa.text(
                f"SELECT {_TS.format(c='hour')}, data FROM {BLOCK_TABLE} WHERE tag_id = :id "
                f"AND hour {cmp} {_VAL.format(p=':b')} ORDER BY hour {order} LIMIT 8"),
                {"id": tag_id, "b": bound}).all()
            if not blocks:
                return None
            for _hour, data in blocks:
                rows = [r for r in codec.decode(data) if (r[0] < t if op == "<" else r[0] >= t)
                        and (r[1] is not None or not numeric)]
                if rows:
                    return rows[-1] if op == "<" else rows[0]
            last = int(blocks[-1][0])
            bound = last if op == "<" else last + 1
            cmp = "<" if op == "<" else ">="

    def grouped_rollups(self, width: int, bucket: int, tag_ids: Sequence[int], start: int,
                        end: int) -> dict[int, list[DeltaRow]]:
        """Rollup rows of ``width`` merged into ``bucket`` output buckets by the database.

        Each output row has the rollup layout with ``bucket`` as its start; its area and
        covered seconds include the held value between the rows inside it and after its last
        row up to its end. What precedes a tag's first row in the range (the value held from
        before ``start``) and empty buckets are left to
        :func:`~engine.historian.buckets.fill_grouped`; the row's ``first_b`` (bucket of its
        first source row) is appended for that.
        """
        out: dict[int, list[DeltaRow]] = {t: [] for t in tag_ids}
        if not tag_ids:
            return out
        table = ROLLUP_TABLES[width // US]
        ids = ", ".join(str(int(t)) for t in tag_ids)
        w, big = width, bucket
        sql = f"""
        WITH r AS (
          SELECT tag_id, b, count, sum, min, max, first, first_ts, last, last_ts, area, covered,
                 b - b %% {big} AS ob, lag(b) OVER w AS pb, lag(last) OVER w AS pl,
                 lead(b) OVER w AS nb
          FROM (SELECT tag_id, {_TS.format(c='bucket')} AS b, count, sum, min, max, first,
                       first_ts, last, last_ts, area, covered FROM {table}
                WHERE tag_id IN ({ids}) AND bucket >= {_VAL.format(p='%(s)s')}
                  AND bucket < {_VAL.format(p='%(e)s')}) x
          WINDOW w AS (PARTITION BY tag_id ORDER BY b))
        SELECT tag_id, ob, sum(count), sum(sum), min(min), max(max),
               min(ARRAY[first_ts::float8, first]), max(ARRAY[last_ts::float8, last]),
               sum(area + coalesce(pl, 0) * GREATEST(0, b - GREATEST(coalesce(pb, b) + {w}, ob))
                   / 1e6 + CASE WHEN nb IS NULL OR nb >= ob + {big}
                           THEN last * (ob + {big} - b - {w}) / 1e6 ELSE 0 END),
               sum(covered + CASE WHEN pb IS NULL THEN 0
                                  ELSE GREATEST(0, b - GREATEST(pb + {w}, ob)) END / 1e6
                   + CASE WHEN nb IS NULL OR nb >= ob + {big}
                          THEN (ob + {big} - b - {w}) / 1e6 ELSE 0 END),
               min(b)
        FROM r GROUP BY tag_id, ob ORDER BY tag_id, ob"""
        with self.engine.connect() as conn:
            raw = conn.connection.driver_connection
            with raw.cursor() as cur:  # type: ignore[union-attr]
                cur.execute(sql, {"s": start, "e": end})
                for (tag_id, ob, count, total, lo, hi, first, last, area, cov,
                     first_b) in cur.fetchall():
                    out[tag_id].append([tag_id, int(ob), int(count), total, lo, hi, first[1],
                                        int(first[0]), last[1], int(last[0]), float(area),
                                        float(cov), int(first_b)])
        return out

    # ------------------------------------------------------------------ maintenance

    def maintain(self, tags: Sequence[HistTag], now: int) -> dict[str, int]:
        """Create the coming days' partitions, compact the old ones."""
        today = day_of(now)
        self.prepare(day_of(now + k * DAY_US) for k in range(DAYS_AHEAD + 1))
        with self.engine.connect() as conn:
            days = self.partitions(conn)
        by_id = {t.id: t for t in tags}
        compacted = 0
        for day in days:
            if day >= today:
                continue
            end = day_start(day) + DAY_US
            compacted += self.compact_day(day, [t for t in by_id.values()
                                                if end <= now - t.compaction_days * DAY_US])
        return {"compacted": compacted}

    def compact_day(self, day: int, due: Sequence[HistTag]) -> int:
        """Rewrite the partition of ``day``'s samples of ``due`` tags into blocks."""
        if not due:
            return 0
        part = f"{SAMPLE_TABLE}_p{day}"
        end = day_start(day) + DAY_US
        with self.engine.begin() as conn:
            if not conn.exec_driver_sql("SELECT pg_try_advisory_xact_lock(7211001)").scalar():
                return 0
            if day not in self.partitions(conn):
                return 0
            conn.exec_driver_sql(f"LOCK TABLE {part} IN SHARE ROW EXCLUSIVE MODE")
            present = {int(r[0]) for r in conn.exec_driver_sql(
                f"SELECT DISTINCT tag_id FROM {part}")}
            due_ids = sorted(present & {t.id for t in due})
            if not due_ids:
                return 0
            ids = ", ".join(map(str, due_ids))
            with micros_cursor(conn) as cur:
                cur.execute(f"SELECT tag_id, ts, value, text, quality FROM {part} "
                            f"WHERE tag_id IN ({ids}) ORDER BY tag_id, ts")
                rows = cur.fetchall()
            groups: dict[tuple[int, int], list[Row]] = {}
            for tag_id, ts, value, text, quality in rows:
                groups.setdefault((tag_id, ts - ts % HOUR_US), []).append(
                    (int(ts), value, text, int(quality)))
            self._write_blocks(conn, groups)
            if set(due_ids) == present:
                conn.exec_driver_sql(f"DROP TABLE {part}")
                self._days.discard(day)
            else:
                conn.exec_driver_sql(f"DELETE FROM {part} WHERE tag_id IN ({ids})")
            conn.execute(sa.text(
                f"UPDATE {TAG_TABLE} SET compacted_until = :e WHERE id IN ({ids}) AND "
                "(compacted_until IS NULL OR compacted_until < :e)"), {"e": end})
            conn.execute(sa.text(
                f"INSERT INTO {DAY_TABLE} (day, compacted_at, samples) VALUES (:d, now(), :n) "
                "ON CONFLICT (day) DO UPDATE SET compacted_at = now(), "
                f"samples = {DAY_TABLE}.samples + excluded.samples"), {"d": day, "n": len(rows)})
        for tag_id in due_ids:
            self._frontier[tag_id] = max(self._frontier.get(tag_id, 0), end)
        log.info("history: compacted %d sample(s) of %d tag(s) of day %d", len(rows),
                 len(due_ids), day)
        return len(rows)

    def _write_blocks(self, conn: Connection, groups: dict[tuple[int, int], list[Row]]
                      ) -> None:
        raw = conn.connection.driver_connection
        with raw.cursor() as cur:  # type: ignore[union-attr]
            for (tag_id, hour), rows in groups.items():
                old = cur.execute(
                    f"SELECT data FROM {BLOCK_TABLE} WHERE tag_id = %s AND hour = "
                    f"{_VAL.format(p='%s')}", (tag_id, hour)).fetchone()
                if old is not None:
                    have = {r[0]: r for r in codec.decode(old[0])}
                    have.update({r[0]: r for r in rows})
                    rows = [have[t] for t in sorted(have)]
                    cur.execute(f"DELETE FROM {BLOCK_TABLE} WHERE tag_id = %s AND hour = "
                                f"{_VAL.format(p='%s')}", (tag_id, hour))
            with cur.copy(f"COPY {BLOCK_TABLE} (tag_id, hour, n, first_ts, last_ts, data) "
                          "FROM STDIN (FORMAT BINARY)") as cp:
                cp.set_types(["int4", "timestamptz", "int4", "int8", "int8", "bytea"])
                for (tag_id, hour), rows in groups.items():
                    if not rows:
                        continue
                    cp.write_row((tag_id, from_us(hour), len(rows), rows[0][0], rows[-1][0],
                                  codec.encode(rows)))

    def apply_retention(self, tags: Iterable[HistTag], now: int, rollup_1m_days: float
                        ) -> int:
        tags = list(tags)
        gone = 0
        if tags:
            longest = max(t.retention_days for t in tags)
            cutoff_day = day_of(now - int(longest * DAY_US))
            with self.engine.begin() as conn:
                for day in self.partitions(conn):
                    if day < cutoff_day:
                        gone += int(conn.exec_driver_sql(
                            f"SELECT count(*) FROM {SAMPLE_TABLE}_p{day}").scalar_one())
                        conn.exec_driver_sql(f"DROP TABLE {SAMPLE_TABLE}_p{day}")
                        self._days.discard(day)
                        log.info("history: dropped partition of day %d (retention)", day)
        gone += super().apply_retention(tags, now, rollup_1m_days)
        return gone

    def _delete_before(self, conn: Connection, tag_ids: Sequence[int], cutoff: int) -> int:
        gone = super()._delete_before(conn, tag_ids, cutoff)
        hour = cutoff - cutoff % HOUR_US
        res = conn.execute(sa.text(
            f"DELETE FROM {BLOCK_TABLE} WHERE tag_id = ANY(:t) AND hour < "
            f"{_VAL.format(p=':c')} RETURNING n"), {"t": list(tag_ids), "c": hour})
        gone += sum(int(r[0]) for r in res)
        edges = conn.execute(sa.text(
            f"SELECT tag_id, data FROM {BLOCK_TABLE} WHERE tag_id = ANY(:t) AND hour = "
            f"{_VAL.format(p=':h')}"), {"t": list(tag_ids), "h": hour}).all()
        for tag_id, edge in edges:  # the block holding the cutoff: keep its younger part
            rows = codec.decode(edge)
            keep = [r for r in rows if r[0] >= cutoff]
            if len(keep) == len(rows):
                continue
            gone += len(rows) - len(keep)
            params = {"t": tag_id, "h": hour}
            if keep:
                conn.execute(sa.text(
                    f"UPDATE {BLOCK_TABLE} SET data = :d, n = :n, first_ts = :f WHERE "
                    f"tag_id = :t AND hour = {_VAL.format(p=':h')}"),
                    {**params, "d": codec.encode(keep), "n": len(keep), "f": keep[0][0]})
            else:
                conn.execute(sa.text(f"DELETE FROM {BLOCK_TABLE} WHERE tag_id = :t AND "
                                     f"hour = {_VAL.format(p=':h')}"), params)
        return gone

    def size_bytes(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            hot = int(conn.exec_driver_sql(
                "SELECT coalesce(sum(pg_total_relation_size(i.inhrelid)), 0) FROM pg_inherits i "
                f"WHERE i.inhparent = '{SAMPLE_TABLE}'::regclass").scalar_one())
            out = {SAMPLE_TABLE: hot}
            for table in (BLOCK_TABLE, *ROLLUP_TABLES.values()):
                out[table] = int(conn.exec_driver_sql(
                    f"SELECT pg_total_relation_size('{table}')").scalar_one())
        return out
