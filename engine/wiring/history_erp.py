"""ERP rollups wired to the generated API: records written through its one write path.

:class:`ApiRecordWriter` is the :class:`~engine.historian.erp.RecordWriter` the rollups use:
the model's API called in process through Flask's test client (no socket, no login: it is
the engine writing, as ``campo.history`` in ``created_by``/``updated_by`` and the audit), so
defaults, ``fetch_from``, computed fields, validations, naming series, the audit trail and
live record events apply exactly as for a user's write. In ``campo serve`` that is the
served app itself, the writer passing the engine's principal
(:func:`engine.auth.principal.engine_principal`) in the request environ; ``campo history
rollup`` builds an app of its own without authentication (:func:`internal_app`).
:class:`RollupScheduler` runs the daily rules in ``campo serve`` once each production day
has closed; ``campo history rollup`` recomputes a range on demand
(:mod:`engine.wiring.history_commands`).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Mapping
from typing import Any

from flask import Flask
from sqlalchemy.engine import Connection, Engine

from engine.audit import record
from engine.historian import Catalog, History, open_store
from engine.historian.erp import ErpRollups, Rule, load_rules
from engine.settings import Settings
from metamodel import Model
from metamodel.tags import TagModel

log = logging.getLogger(__name__)

#: who the rollups write as
ACTOR = "campo.history"


class RollupWriteError(Exception):
    """The API refused a rollup record (the message carries its answer)."""


def _audit(conn: Connection, *, action: str, entity: str, record_id: Any,
           before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> None:
    record(conn, action=action, entity=entity, record_id=record_id, before=before,
           after=after, user_id=None, username=ACTOR, source_ip=None, request_id=None)


def internal_app(model: Model, engine: Engine, settings: Settings) -> Flask:
    """The model's API in process only, acting as :data:`ACTOR` (audited)."""
    from engine.api import create_app

    return create_app(model, engine, settings, current_user=lambda: ACTOR,
                      record_change=_audit)


class ApiRecordWriter:
    """Finds, creates and patches records through the generated API (in process).

    ``app`` is either an :func:`internal_app` or the served app with ``served=True``: then
    each request carries the engine's principal (every permission and site, not throttled,
    audited as :data:`ACTOR`), which no HTTP client can send.
    """

    def __init__(self, app: Flask, *, served: bool = False) -> None:
        self.app = app
        environ: dict[str, Any] = {}
        if served:
            from engine.auth.principal import ENGINE_ENVIRON, engine_principal

            environ[ENGINE_ENVIRON] = engine_principal(ACTOR)
        self.client = app.test_client()
        self.client.environ_base.update(environ)
        self._lock = threading.Lock()

    @staticmethod
    def _url(entity: str) -> str:
        module, name = entity.split(".", 1)
        return f"/api/{module}/{name}"

    def _check(self, r: Any, what: str) -> Any:
        if r.status_code >= 400:
            body = r.get_json(silent=True) or {}
            raise RollupWriteError(f"{what}: {r.status_code} {body.get('message', '')} "
                                   f"{body.get('errors', '')}".strip())
        return r.get_json()

    def find(self, entity: str, filters: Mapping[str, Any]) -> int | None:
        with self._lock:
            r = self.client.get(self._url(entity), query_string={**filters, "limit": 2,
                                                                 "fields": "id"})
            items = self._check(r, f"reading {entity}")["items"]
        if len(items) > 1:
            raise RollupWriteError(f"{entity}: more than one record with {dict(filters)}")
        return int(items[0]["id"]) if items else None

    def create(self, entity: str, values: Mapping[str, Any]) -> int:
        with self._lock:
            r = self.client.post(self._url(entity), json=_jsonable(values))
            return int(self._check(r, f"creating {entity} {dict(values)}")["id"])

    def update(self, entity: str, record_id: int, values: Mapping[str, Any]) -> None:
        with self._lock:
            r = self.client.patch(f"{self._url(entity)}/{record_id}", json=_jsonable(values))
            self._check(r, f"updating {entity} {record_id}")


def _jsonable(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (str(v) if not isinstance(v, (bool, int, float, str, type(None))) else v)
            for k, v in values.items()}


def make_rollups(settings: Settings, model: Model, tags: TagModel, engine: Engine,
                 app: Flask | None = None) -> ErpRollups | None:
    """The project's ERP rollups over ``engine`` (None when no module declares any),
    writing through ``app`` (the served app, see :class:`ApiRecordWriter`) or, without
    one, through an :func:`internal_app` of their own (a second copy of the generated API:
    ~16 MB for the demo project, so ``campo serve`` passes its app).

    Raises :class:`metamodel.DefinitionError` when a rule does not check.
    """
    rules = load_rules(settings.project, model, tags)
    if not rules:
        return None
    url = settings.history_database_url
    store = open_store(engine if not url else _engine(url))
    store.create()
    catalog = Catalog(store)
    catalog.load()
    history = History(store, catalog, settings.history_max_points,
                      settings.history_rollup_1m_days)
    writer = (ApiRecordWriter(app, served=True) if app is not None
              else ApiRecordWriter(internal_app(model, engine, settings)))
    return ErpRollups(rules, tags, history, writer)


def _engine(url: str) -> Engine:
    from engine.db import create_engine_for

    return create_engine_for(url)


class RollupScheduler:
    """Runs the daily rules every ``every`` seconds for the closed days not computed yet."""

    def __init__(self, rollups: ErpRollups, every: float = 600.0) -> None:
        self.rollups = rollups
        self.every = every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._main, name="campo-erp-rollups",
                                        daemon=True)
        self._thread.start()

    def _main(self) -> None:
        if self._stop.wait(5.0):  # let the server settle first
            return
        while not self._stop.is_set():
            self.tick(dt.datetime.now(dt.UTC))
            self._stop.wait(self.every)

    def tick(self, now: dt.datetime) -> list[Any]:
        """Compute what is due at ``now``; errors are logged, retried next time.

        On PostgreSQL one web process at a time runs it (an advisory lock): with several
        web workers, a day's records are still written once.
        """
        engine = self.rollups.history.store.engine
        if engine.dialect.name == "postgresql":
            with engine.connect() as conn:
                if not conn.exec_driver_sql("SELECT pg_try_advisory_lock(7211002)").scalar():
                    return []
                try:
                    return self._tick(now)
                finally:
                    conn.exec_driver_sql("SELECT pg_advisory_unlock(7211002)")
        return self._tick(now)

    def _tick(self, now: dt.datetime) -> list[Any]:
        done: list[Any] = []
        by_day: dict[dt.date, list[Rule]] = {}
        try:
            for rule, day in self.rollups.due(now):
                by_day.setdefault(day, []).append(rule)
            for day, rules in sorted(by_day.items()):
                done += self.rollups.run_days(day, day, rules)
        except Exception as exc:  # the database or the API refused: next tick again
            log.warning("history: ERP rollups failed: %s", exc)
        written = [o for o in done if o.record_id is not None]
        if written:
            log.info("history: ERP rollups wrote %d record(s)", len(written))
        return done

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
