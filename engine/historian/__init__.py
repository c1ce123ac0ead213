"""The historian: every tag change kept, compact, queryable, and never lost.

Fed by the SCADA runtime as a sink (``Historian.publish`` journals each batch to a local
spool before returning, off the database path), it writes batches to a :class:`Store`
(SQLite, PostgreSQL with daily partitions and compaction, or TimescaleDB), keeps 1-minute
and 1-hour rollups up to date, and answers queries (:class:`History`) for the REST API
(``/api/history``, :mod:`engine.live.history_views`), ERP rollups and trends. See docs/historian.md.
"""

from __future__ import annotations

from .catalog import Catalog, TagPolicy, policies_from
from .query import History, QueryError
from .samples import HistTag, Sample
from .store import Store, open_store
from .writer import Historian

__all__ = ["Catalog", "HistTag", "Historian", "History", "QueryError", "Sample", "Store",
           "TagPolicy", "open_store", "policies_from"]
