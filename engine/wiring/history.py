"""The historian in the processes that run the SCADA runtime, and ``/api/history`` in the web.

Wiring (:mod:`engine.wiring`): :func:`make_historian` builds the sink that
:class:`~engine.wiring.edge.RuntimeBridge` subscribes to every tag change (``campo serve``
embedded, ``campo scada`` split); :func:`history_service` and :func:`init_history` give the
web app its queries and the writers' figures. :func:`spool_warning` is the start-up check of
a site's ``offline_days`` against the spool's bound and the disk.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections.abc import Callable, Sequence
from typing import Any

from flask import Flask
from flask_smorest import Api
from sqlalchemy.engine import Engine

from engine.db import create_engine_for
from engine.historian import Historian, open_store, policies_from
from engine.historian.planning import spool_estimate
from engine.historian.spool import Spool
from engine.live.history_views import HistoryService, build_blueprint
from engine.scada.sinks import QueuedSink, SinkStats
from engine.settings import Settings
from metamodel.tags import TagModel

log = logging.getLogger(__name__)


def _history_url(settings: Settings, engine: Engine | None) -> str:
    if settings.history_database_url or engine is None:
        return settings.resolved_history_url()
    return engine.url.render_as_string(hide_password=False)


def make_historian(settings: Settings, tags: TagModel, engine: Engine | None = None
                   ) -> Historian | None:
    """The sink storing every change of ``tags`` (None when ``CAMPO_HISTORY=false``).

    It writes to ``CAMPO_HISTORY_DATABASE_URL``, else to ``engine``'s database (with its own
    connections), else to the main database of the settings.
    """
    if not settings.history:
        return None
    spool = Spool(settings.resolved_spool_dir(), settings.history_spool_max_bytes)
    engine = create_engine_for(_history_url(settings, engine))
    for line in spool_warning(settings, tags):
        log.warning("%s", line)
    return Historian(lambda: open_store(engine), spool,
                     policies_from(tags), batch=settings.history_batch,
                     flush_seconds=settings.history_flush_seconds,
                     rollup_1m_days=settings.history_rollup_1m_days)


class _AsSink:
    """The :class:`~engine.scada.sinks.Sink` face of a historian (for the queue's name)."""

    name = "historian"

    def __init__(self, historian: Historian) -> None:
        self.historian = historian

    async def start(self) -> None:
        self.historian.start()

    def publish(self, batch: Sequence[Any]) -> None:
        self.historian.publish(batch)

    async def stop(self) -> None:
        await asyncio.to_thread(self.historian.stop)


class HistorianSink(QueuedSink):
    """The historian among the runtime's sinks.

    Its ``publish`` is already a queue that never touches the database (it appends the
    batch to the spool and hands it to its own writer thread), so :meth:`offer` calls it at
    once instead of queueing in memory: a SIGKILL of the runtime right after a scan loses
    none of the changes of that scan. The database work stays off the scan path.
    """

    def __init__(self, historian: Historian) -> None:
        super().__init__(_AsSink(historian))
        self.historian = historian

    def offer(self, batch: Sequence[Any]) -> None:
        if not batch:
            return
        try:
            self.historian.publish(batch)
        except Exception as exc:  # a full disk must not stop the scan
            self._failed("publish", exc)
            return
        self.published += len(batch)

    async def start(self) -> None:
        self.historian.start()

    async def stop(self, flush: float = 5.0) -> None:
        await asyncio.to_thread(self.historian.stop, flush)

    def stats(self) -> SinkStats:
        st = self.historian.status()
        oldest = st.get("oldest_unflushed")
        lag = 0.0
        if oldest:
            import datetime as dt

            lag = max(0.0, time.time() - dt.datetime.fromisoformat(
                oldest.replace("Z", "+00:00")).timestamp())
        return SinkStats(self.name, "journal", int(st["waiting_in_memory"]), self.published,
                         int(st["dropped_samples"]), self.failures,
                         st["last_error"] or self.last_error, lag)


def history_service(settings: Settings, engine: Engine | None = None,
                    live_status: Callable[[], dict[str, Any]] | None = None) -> HistoryService:
    """Queries over the history database (``engine``'s unless the settings name another;
    opened on the first request)."""

    def make() -> Any:
        if engine is not None and not settings.history_database_url:
            return open_store(engine)
        return open_store(create_engine_for(settings.resolved_history_url()))

    return HistoryService(make, settings.history_max_points, settings.history_rollup_1m_days,
                          live_status,
                          owns_engine=engine is None or bool(settings.history_database_url))


def init_history(app: Flask, api: Api, service: HistoryService) -> None:
    """Register ``/api/history`` (in the OpenAPI document)."""
    app.extensions["campo_history"] = service
    api.register_blueprint(build_blueprint(service))


def spool_warning(settings: Settings, tags: TagModel) -> list[str]:
    """Warnings when a site's ``offline_days`` need more spool than the bound or the disk."""
    out = []
    spool_dir = settings.resolved_spool_dir()
    probe = spool_dir
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    for est in spool_estimate(tags):
        if not est.offline_days:
            continue
        if est.bytes > settings.history_spool_max_bytes:
            out.append(f"history: site {est.site} must survive {est.offline_days:g} day(s) "
                       f"offline, which needs about {est.bytes / 1e9:.1f} GB of spool; the "
                       f"bound is {settings.history_spool_max_bytes / 1e9:.1f} GB "
                       "(CAMPO_HISTORY_SPOOL_MAX_BYTES): older samples would be dropped")
        if est.bytes > free:
            out.append(f"history: site {est.site} needs about {est.bytes / 1e9:.1f} GB of spool "
                       f"for {est.offline_days:g} day(s) offline, but {probe} has "
                       f"{free / 1e9:.1f} GB free")
    return out
