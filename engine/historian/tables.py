"""The historian's platform tables (``campo_history*``) on :data:`engine.db.platform.metadata`.

Created and migrated by the platform revisions (``engine/db/platform_versions/``) like every
``campo_*`` table; the dialect-specific DDL is in the create hooks below: on PostgreSQL,
``campo_history`` is partitioned by day (:func:`history_options`), or a TimescaleDB
hypertable when the extension is installed (:func:`make_hypertable`).

- ``campo_history_tag``: one row per tag ever historised (id, path, site, value kind,
  retention and compaction ages); renamed tags keep their id (``renamed_from``), tags gone
  from the model are retired, not deleted, so their history stays readable;
- ``campo_history``: samples (tag id, time, number or text, quality), key ``(tag_id, ts)``;
  daily partitions on PostgreSQL, a hypertable on TimescaleDB, ``WITHOUT ROWID`` on SQLite
  (where ``ts`` is microseconds since 1970 in an integer);
- ``campo_history_block``: compacted samples, one row per tag and hour (native PostgreSQL
  partitions older than the compaction age, see :mod:`engine.historian.codec`);
- ``campo_history_1m`` and ``campo_history_1h``: rollups per tag and bucket;
- ``campo_history_day``: which days are compacted (native partitions);
- ``campo_history_status``: the writer's last figures, for web processes without a writer;
- ``campo_history_rollup_run``: ERP rollup runs (rule, day, record) for idempotent re-runs.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine.db import platform
from engine.db.platform_ddl import timescaledb_version
from engine.db.tables import UTCDateTime

#: the platform tables' MetaData (the historian's tables are declared on it)
history_metadata = platform.metadata

TAG_TABLE = "campo_history_tag"
SAMPLE_TABLE = "campo_history"
BLOCK_TABLE = "campo_history_block"
ROLLUP_TABLES = {60: "campo_history_1m", 3600: "campo_history_1h"}
DAY_TABLE = "campo_history_day"
STATUS_TABLE = "campo_history_status"
RUN_TABLE = "campo_history_rollup_run"

tag_table = sa.Table(
    TAG_TABLE, history_metadata,
    sa.Column("id", platform.ID_TYPE, primary_key=True, autoincrement=True),
    sa.Column("path", sa.String(255), nullable=False, unique=True),
    sa.Column("site", sa.String(63), nullable=False),
    #: ``number``, ``bool`` or ``text``: how ``value``/``text`` read back
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("unit", sa.String(32), nullable=True),
    sa.Column("retention_days", sa.Float(), nullable=False),
    sa.Column("compaction_days", sa.Float(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    #: set when the tag left the model (its history stays until retention removes it)
    sa.Column("retired_at", UTCDateTime(), nullable=True),
    #: the paths this tag had before (comma-separated, oldest first)
    sa.Column("former_paths", sa.Text(), nullable=True),
    #: samples before this instant (µs) may be in compact blocks rather than in partitions
    sa.Column("compacted_until", sa.BigInteger(), nullable=True),
    sqlite_autoincrement=True,
)


#: an instant: integer microseconds since 1970 on SQLite, ``timestamptz`` on PostgreSQL
TS_TYPE = sa.BigInteger().with_variant(sa.DateTime(timezone=True), "postgresql")


def _ts_column(name: str = "ts") -> sa.Column[int]:
    return sa.Column(name, TS_TYPE, nullable=False)


sample_table = sa.Table(
    SAMPLE_TABLE, history_metadata,
    sa.Column("tag_id", sa.Integer(), nullable=False),
    _ts_column(),
    sa.Column("value", sa.Float(precision=53), nullable=True),
    sa.Column("text", sa.Text(), nullable=True),
    sa.Column("quality", sa.SmallInteger(), nullable=False),
    sa.PrimaryKeyConstraint("tag_id", "ts"),
    sqlite_with_rowid=False,
)


def history_options(conn: Connection) -> dict[str, Any]:
    """``CREATE TABLE`` options of ``campo_history``: daily partitions on plain PostgreSQL."""
    if conn.dialect.name == "postgresql" and timescaledb_version(conn) is None:
        return {"postgresql_partition_by": "RANGE (ts)"}
    return {}


def make_hypertable(conn: Connection, table: str) -> None:
    """With TimescaleDB: ``campo_history`` as a hypertable of 1-day chunks, compressible
    (segmented by tag, ordered by time). Idempotent; policies are set by the store."""
    if timescaledb_version(conn) is None:
        return
    conn.exec_driver_sql(f"SELECT create_hypertable('{table}', by_range('ts', "
                         "INTERVAL '1 day'), if_not_exists => TRUE)")
    compressed = conn.exec_driver_sql(
        "SELECT compression_enabled FROM timescaledb_information.hypertables "
        f"WHERE hypertable_name = '{table}' AND hypertable_schema = current_schema()").scalar()
    if not compressed:
        conn.exec_driver_sql(f"ALTER TABLE {table} SET (timescaledb.compress, "
                             "timescaledb.compress_segmentby = 'tag_id', "
                             "timescaledb.compress_orderby = 'ts')")


platform.on_create(sample_table, make_hypertable, options=history_options)

block_table = sa.Table(
    BLOCK_TABLE, history_metadata,
    sa.Column("tag_id", sa.Integer(), nullable=False),
    #: start of the hour the block covers
    _ts_column("hour"),
    sa.Column("n", sa.Integer(), nullable=False),
    sa.Column("first_ts", sa.BigInteger(), nullable=False),
    sa.Column("last_ts", sa.BigInteger(), nullable=False),
    sa.Column("data", sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint("tag_id", "hour"),
    sqlite_with_rowid=False,
)


def _rollup(name: str) -> sa.Table:
    return sa.Table(
        name, history_metadata,
        sa.Column("tag_id", sa.Integer(), nullable=False),
        _ts_column("bucket"),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("sum", sa.Float(precision=53), nullable=False),
        sa.Column("min", sa.Float(precision=53), nullable=False),
        sa.Column("max", sa.Float(precision=53), nullable=False),
        sa.Column("first", sa.Float(precision=53), nullable=False),
        sa.Column("first_ts", sa.BigInteger(), nullable=False),
        sa.Column("last", sa.Float(precision=53), nullable=False),
        sa.Column("last_ts", sa.BigInteger(), nullable=False),
        #: integral of the held value over the covered seconds (time-weighted average)
        sa.Column("area", sa.Float(precision=53), nullable=False),
        sa.Column("covered", sa.Float(precision=53), nullable=False),
        sa.PrimaryKeyConstraint("tag_id", "bucket"),
        sqlite_with_rowid=False,
    )


rollup_tables = {width: _rollup(name) for width, name in ROLLUP_TABLES.items()}

day_table = sa.Table(
    DAY_TABLE, history_metadata,
    #: the day (UTC) as ``YYYYMMDD``
    sa.Column("day", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("compacted_at", UTCDateTime(), nullable=True),
    sa.Column("samples", sa.BigInteger(), nullable=False, server_default="0"),
)

status_table = sa.Table(
    STATUS_TABLE, history_metadata,
    sa.Column("node", sa.String(127), primary_key=True),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("status", sa.JSON(), nullable=False),
)

run_table = sa.Table(
    RUN_TABLE, history_metadata,
    sa.Column("rule", sa.String(127), nullable=False),
    #: the asset (instance path) the record is for
    sa.Column("instance", sa.String(255), nullable=False),
    sa.Column("day", sa.Date(), nullable=False),
    sa.Column("entity", sa.String(127), nullable=False),
    sa.Column("record_id", platform.ID_TYPE, nullable=False),
    sa.Column("computed_at", UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint("rule", "instance", "day"),
)
