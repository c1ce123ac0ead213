"""``campo_history_tag`` kept in step with the tag model: ids, renames, retirements, policies.

A tag keeps its id for life: a tag renamed in YAML with ``renamed_from:`` takes over the id
(and so the history) of its old path; a tag gone from the model is *retired* (its history
stays readable until retention removes it); a sample for a path the table does not know
(a spool written by an older model) registers it on the fly.

Retention and compaction ages come from the tag model: the tag's own ``history:`` setting,
else its template's, else its site's, else the defaults (365 and 7 days).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from .samples import HistTag, kind_of
from .store import Store
from .tables import tag_table

log = logging.getLogger(__name__)

DEFAULT_RETENTION_DAYS = 365.0
DEFAULT_COMPACTION_DAYS = 7.0


@dataclass(frozen=True, slots=True)
class TagPolicy:
    """What the historian needs of one tag of the model."""

    path: str
    site: str
    kind: str
    unit: str | None = None
    retention_days: float = DEFAULT_RETENTION_DAYS
    compaction_days: float = DEFAULT_COMPACTION_DAYS
    #: former full paths, most recent first
    renamed_from: tuple[str, ...] = ()


def policies_from(model: Any) -> list[TagPolicy]:
    """The policies of every tag of a :class:`metamodel.tags.TagModel`."""
    out = []
    for tag in model.tags.values():
        kind = "auto" if tag.data_type is None else kind_of(tag.data_type)
        out.append(TagPolicy(
            tag.path, tag.site, kind, tag.unit,
            float(getattr(tag, "retention_days", None) or DEFAULT_RETENTION_DAYS),
            float(getattr(tag, "compaction_days", None) or DEFAULT_COMPACTION_DAYS),
            tuple(getattr(tag, "renamed_from", ()) or ())))
    return out


@dataclass
class SyncReport:
    """What :meth:`Catalog.sync` changed."""

    added: list[str]
    renamed: list[tuple[str, str]]
    retired: list[str]
    updated: list[str]


class Catalog:
    """The historised tags by path, with their ids (thread-safe)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()
        self.tags: dict[str, HistTag] = {}

    def load(self) -> dict[str, HistTag]:
        """Reload from the database."""
        tags = self.store.load_tags()
        with self._lock:
            self.tags = tags
        return tags

    def sync(self, policies: Sequence[TagPolicy], now: dt.datetime | None = None) -> SyncReport:
        """Make the table match the model (insert, rename, update, retire)."""
        now = now or dt.datetime.now(dt.UTC)
        report = SyncReport([], [], [], [])
        wanted = {p.path: p for p in policies}
        with self.store.engine.begin() as conn:
            rows = {r.path: r for r in conn.execute(sa.select(tag_table)).all()}
            for p in policies:
                row = rows.get(p.path)
                values = {"site": p.site, "unit": p.unit, "retention_days": p.retention_days,
                          "compaction_days": p.compaction_days}
                if row is None:
                    old = next((o for o in p.renamed_from if o in rows and o not in wanted),
                               None)
                    if old is not None:
                        former = ",".join(x for x in (rows[old].former_paths, old) if x)
                        conn.execute(tag_table.update().where(tag_table.c.path == old).values(
                            path=p.path, former_paths=former, retired_at=None, **values))
                        rows[p.path] = rows.pop(old)
                        report.renamed.append((old, p.path))
                        log.info("history: tag %s renamed from %s keeps its history",
                                 p.path, old)
                        continue
                    conn.execute(tag_table.insert().values(
                        path=p.path, kind=p.kind, created_at=now, **values))
                    report.added.append(p.path)
                    continue
                changed = {k: v for k, v in values.items() if getattr(row, k) != v}
                if row.retired_at is not None:
                    changed["retired_at"] = None
                if p.kind != "auto" and row.kind != p.kind:
                    changed["kind"] = p.kind
                if changed:
                    conn.execute(tag_table.update().where(tag_table.c.id == row.id)
                                 .values(**changed))
                    report.updated.append(p.path)
            for path, row in rows.items():
                if path not in wanted and row.retired_at is None:
                    conn.execute(tag_table.update().where(tag_table.c.id == row.id)
                                 .values(retired_at=now))
                    report.retired.append(path)
        if report.retired:
            log.info("history: %d tag(s) left the model and are retired (history kept)",
                     len(report.retired))
        self.load()
        return report

    def ids_for(self, batch: Iterable[tuple[Any, ...]]) -> list[int]:
        """Tag ids of the rows' paths (first item), registering unknown paths."""
        tags = self.tags
        out: list[int] = []
        add = out.append
        for row in batch:
            tag = tags.get(row[0])
            if tag is None or tag.kind == "auto":
                tag = self._learn(row[0], row[2], row[3])
                tags = self.tags
            add(tag.id)
        return out

    def _learn(self, path: str, value: Any, text: str | None) -> HistTag:
        """Register an unknown path, or settle the kind of an untyped tag by its value."""
        kind = ("text" if text is not None else "bool" if isinstance(value, bool)
                else "number" if value is not None else "auto")
        with self._lock:
            tag = self.tags.get(path)
            with self.store.engine.begin() as conn:
                if tag is None:
                    conn.execute(tag_table.insert().values(
                        path=path, site=path.split(".", 1)[0], kind=kind,
                        retention_days=DEFAULT_RETENTION_DAYS,
                        compaction_days=DEFAULT_COMPACTION_DAYS,
                        created_at=dt.datetime.now(dt.UTC)))
                    log.warning("history: samples for %s, a tag the model does not have; "
                                "registered", path)
                elif kind != "auto":
                    conn.execute(tag_table.update().where(tag_table.c.id == tag.id)
                                 .values(kind=kind))
            self.tags = {**self.tags, **self.store.load_tags()}
            return self.tags[path]

    def select(self, paths: Iterable[str]) -> list[HistTag]:
        """The known tags among ``paths``."""
        tags = self.tags
        return [tags[p] for p in paths if p in tags]
