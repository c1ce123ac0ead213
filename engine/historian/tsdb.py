"""The TimescaleDB store: ``campo_history`` as a hypertable with 1-day chunks.

As the seed asks: ``add_retention_policy`` (the longest retention of any tag, default one
year) and native compression after the compaction age (default 7 days, segmented by tag,
ordered by time), both run by TimescaleDB's own background jobs. Tags with a shorter
retention than the policy's lose their older rows to the historian's retention pass (plain
``DELETE``, which TimescaleDB applies to compressed chunks too). Compression is per chunk,
so a per-tag compaction age is not honoured here: the smallest one of the site settings
applies to the whole hypertable. Ingest, rollups and queries are the PostgreSQL store's.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from sqlalchemy.engine import Connection, Engine

from engine.db import platform
from engine.db.platform_ddl import timescaledb_version

from .pgstore import PgStore
from .samples import HistTag
from .store import Store
from .tables import SAMPLE_TABLE

log = logging.getLogger(__name__)


def has_timescaledb(engine: Engine) -> bool:
    """Whether the database has the ``timescaledb`` extension installed."""
    with engine.connect() as conn:
        return timescaledb_version(conn) is not None


class TsdbStore(PgStore):
    """PostgreSQL with TimescaleDB: a hypertable, compression and retention policies."""

    kind = "timescaledb"
    compacts = False

    def create(self) -> None:
        platform.upgrade(self.engine)  # the table's create hook made it a hypertable
        # the policies follow the tags' ages: set by maintain() (the writer runs it at start)

    def set_policies(self, retention_days: float, compaction_days: float) -> None:
        """(Re)set the hypertable's retention and compression policies."""
        with self.engine.begin() as conn:
            for kind, days in (("retention", retention_days), ("compression", compaction_days)):
                current = conn.exec_driver_sql(
                    "SELECT config FROM timescaledb_information.jobs WHERE proc_name = "
                    f"'policy_{kind}' AND hypertable_name = '{SAMPLE_TABLE}' "
                    "AND hypertable_schema = current_schema()").scalar()
                key = "drop_after" if kind == "retention" else "compress_after"
                wanted = f"{round(days * 86400)} seconds"
                if current is not None and _seconds(conn, current.get(key)) == round(days * 86400):
                    continue
                if current is not None:
                    conn.exec_driver_sql(f"SELECT remove_{kind}_policy('{SAMPLE_TABLE}')")
                conn.exec_driver_sql(
                    f"SELECT add_{kind}_policy('{SAMPLE_TABLE}', INTERVAL '{wanted}')")
                log.info("history: TimescaleDB %s policy set to %g day(s)", kind, days)

    def refresh(self) -> None:
        self._days = set()
        self._frontier = {}

    def partitions(self, conn: Connection) -> list[int]:
        return []

    def prepare(self, days: Iterable[int]) -> None:
        """Chunks are created by TimescaleDB as rows arrive."""

    def maintain(self, tags: Sequence[HistTag], now: int) -> dict[str, int]:
        if tags:
            self.set_policies(max(t.retention_days for t in tags),
                              min(t.compaction_days for t in tags))
        return {}

    def apply_retention(self, tags: Iterable[HistTag], now: int, rollup_1m_days: float
                        ) -> int:
        return Store.apply_retention(self, tags, now, rollup_1m_days)

    def size_bytes(self) -> dict[str, int]:
        out = super().size_bytes()
        with self.engine.connect() as conn:
            out[SAMPLE_TABLE] = int(conn.exec_driver_sql(
                f"SELECT coalesce(hypertable_size('{SAMPLE_TABLE}'), 0)").scalar_one())
        return out


def _seconds(conn: Connection, text: object) -> float | None:
    if text is None:
        return None
    return float(conn.exec_driver_sql(
        f"SELECT EXTRACT(EPOCH FROM INTERVAL '{text}')").scalar_one())
