"""Wiring of the alarms: the engine as a runtime sink, its events on the bus and MQTT, the
notification service, the ``/api/alarms`` views and the ERP workflow hooks.

:class:`AlarmWiring` is built by :mod:`engine.wiring.edge` for ``campo serve`` (engine and
API in one process) and for ``campo scada`` (engine only); a web process without the
runtime (``CAMPO_BUS=mqtt``) serves the lists from the database and receives events over
the bus's MQTT event channel. One :class:`~engine.notify.NotificationService` per process
and database (:func:`notification_service`) delivers alarm and workflow notifications.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Connection, Engine

from engine.alarms.compile import compile_alarms
from engine.alarms.engine import AlarmEngine
from engine.alarms.mqtt import AlarmPublisher
from engine.alarms.replay import HistorianReader
from engine.alarms.store import AlarmStore, ensure_alarm_tables
from engine.alarms.web import AlarmsWeb, init_alarms
from engine.bus.events import EventHub, MqttEventHub
from engine.errors import UserError
from engine.mqtt import Broker
from engine.notify import NotificationService
from engine.settings import Settings
from metamodel import DefinitionError
from metamodel.notify import load_notify
from metamodel.tags import TagModel

log = logging.getLogger(__name__)

_services: dict[tuple[str, str], NotificationService | None] = {}


def notification_service(settings: Settings, db: Engine) -> NotificationService | None:
    """The process's notification service for ``db`` (None without ``notify/``)."""
    key = (str(settings.project.resolve()), db.url.render_as_string(hide_password=False))
    if key not in _services:
        try:
            config = load_notify(settings.project)
        except DefinitionError as err:
            raise UserError(err.report()) from None
        _services[key] = None if config is None else NotificationService(
            config, db, environ=dict(os.environ),
            mqtt_url=Broker.from_settings(settings) if settings.mqtt_url else "")
    return _services[key]


def _stored_history(settings: Settings, db: Engine) -> Callable[[], HistorianReader | None]:
    """Where the engine seeds its rate-of-change windows at start: the historian's store
    (its own database, or the main one), or nothing when the historian is off."""
    def reader() -> HistorianReader | None:
        if not settings.history:
            return None
        import sqlalchemy as sa

        from engine.db import create_engine_for
        from engine.historian import open_store
        from engine.historian.tables import TAG_TABLE

        url = settings.history_database_url
        hdb = create_engine_for(url) if url else db
        if not sa.inspect(hdb).has_table(TAG_TABLE):
            if url:
                hdb.dispose()
            return None  # nothing stored yet (a first start)
        # read once at start: a database of its own is let go after (close())
        return HistorianReader(open_store(hdb), dispose=bool(url))

    return reader


def event_hub(settings: Settings) -> EventHub:
    """The bus's event channels: in process, or shared over MQTT with ``CAMPO_BUS=mqtt``."""
    if settings.bus == "mqtt" and settings.mqtt_url:
        return MqttEventHub(Broker.from_settings(settings), settings.bus_prefix)
    return EventHub()


class AlarmWiring:
    """The alarm engine (when this process runs the runtime), its outputs and its API."""

    def __init__(self, tags: TagModel, db: Engine, settings: Settings, hub: EventHub, *,
                 run_engine: bool) -> None:
        try:
            compiled = compile_alarms(tags)
        except DefinitionError as err:
            raise UserError(err.report()) from None
        ensure_alarm_tables(db)
        self.hub = hub
        self.notify = notification_service(settings, db) if run_engine else None
        self.publisher: AlarmPublisher | None = None
        self.engine: AlarmEngine | None = None
        if run_engine and compiled.alarms:
            self.engine = AlarmEngine(compiled, AlarmStore(db, settings.alarm_journal_days),
                                      outbox=self.notify, history=_stored_history(settings, db))
            self.engine.listeners.append(lambda events: hub.publish("alarms", events))
            if settings.mqtt_url:
                self.publisher = AlarmPublisher(Broker.from_settings(settings),
                                                settings.alarm_topic,
                                                self.engine.active)
                self.engine.listeners.append(self.publisher)
            if self.notify is not None:
                self.notify.active_alarms = self.engine.active
        actions: Any = None
        if self.engine is not None:
            actions = self.engine.act
            if isinstance(hub, MqttEventHub):  # web processes elsewhere act through the bus
                self._serving = hub.subscribe(ACTIONS, self._serve_actions)
        elif isinstance(hub, MqttEventHub):
            actions = RemoteActions(hub)
        self.web = AlarmsWeb(tags, db, actions=actions)

    def _serve_actions(self, requests: Any) -> None:
        """Do the actions web processes sent over the bus; answer each on the results channel."""
        assert self.engine is not None
        for req in requests:
            try:
                until = req.get("until")
                results = self.engine.act(
                    req["action"], list(req["alarms"]), user=req.get("user"),
                    roles=req.get("roles") or (), sites=req.get("sites"),
                    comment=req.get("comment"), reason=req.get("reason"),
                    until=dt.datetime.fromisoformat(until) if until else None)
            except (KeyError, TypeError, ValueError) as exc:
                results = [{"alarm": a, "ok": False, "status": 400, "error": str(exc)}
                           for a in req.get("alarms") or []]
            self.hub.publish(RESULTS, [{"id": req.get("id"), "results": results}])

    def sparkplug_metrics(self) -> dict[str, int]:
        """Sparkplug metrics of the alarms (one String per alarm: its state), by pseudo tag."""
        if self.engine is None:
            return {}
        from engine.scada.sparkplug_pb import DataType

        return {sparkplug_tag(ca.rule.site, ca.rule.path): int(DataType.String)
                for ca in self.engine.compiled.alarms.values()}

    def attach_sparkplug(self, publish: Callable[[list[Any]], None]) -> None:
        """Publish every alarm's state as a Sparkplug metric (device ``<site>.alarms``,
        metric ``<alarm path below the site, with slashes>``) through ``publish``."""
        engine = self.engine
        if engine is None:
            return
        from engine.scada.types import Quality, TagValue

        def values(events: list[dict[str, Any]]) -> list[Any]:
            now = dt.datetime.now(dt.UTC)
            return [TagValue(sparkplug_tag(e["site"], e["alarm"]), e["state"], Quality.GOOD,
                             dt.datetime.fromisoformat(e["ts"]) if e.get("ts") else now)
                    for e in events]

        engine.load()
        current = {e["alarm"]: e for e in engine.active()}
        start = [current.get(p) or {"site": ca.rule.site, "alarm": p, "state": "normal",
                                    "ts": None}
                 for p, ca in engine.compiled.alarms.items()]
        publish(values(start))
        engine.listeners.append(lambda events: publish(values(events)))

    @property
    def sinks(self) -> list[Any]:
        """What the runtime feeds: the alarm engine."""
        return [self.engine] if self.engine is not None else []

    def init_app(self, app: Any, api: Any) -> None:
        """``/api/alarms`` and the event channels the WebSocket subscribes to."""
        init_alarms(app, api, self.web)
        app.extensions["campo_events"] = self.hub

    def start(self) -> None:
        if self.notify is not None:
            self.notify.start()
        if self.publisher is not None and self.engine is not None:
            self.engine.load()
            self.publisher.publish_active(sorted({a.rule.site for a in
                                                  self.engine.compiled.alarms.values()}))

    def stop(self) -> None:
        if self.notify is not None:
            self.notify.stop()
        if self.publisher is not None:
            self.publisher.close()
        self.hub.close()


def sparkplug_tag(site: str, alarm: str) -> str:
    """The pseudo tag of an alarm's Sparkplug metric: ``sim_pad.alarms.w1/pip_low/lo``."""
    return f"{site}.alarms." + alarm[len(site) + 1:].replace(".", "/")


ACTIONS = "alarm_actions"
RESULTS = "alarm_results"


class RemoteActions:
    """``AlarmsWeb.actions`` for a web process apart from the engine: a request on the bus's
    ``alarm_actions`` channel, the answer on ``alarm_results`` (or 504 after ``timeout``)."""

    def __init__(self, hub: EventHub, timeout: float = 10.0) -> None:
        self.hub = hub
        self.timeout = timeout
        self._waiting: dict[str, tuple[threading.Event, list[Any]]] = {}
        self._lock = threading.Lock()
        hub.subscribe(RESULTS, self._answer)

    def _answer(self, answers: Any) -> None:
        for a in answers:
            with self._lock:
                waiter = self._waiting.get(str(a.get("id")))
            if waiter is not None:
                waiter[1].append(a.get("results") or [])
                waiter[0].set()

    def __call__(self, action: str, alarms: Any, **kw: Any) -> list[dict[str, Any]]:
        req_id = uuid.uuid4().hex
        event, box = threading.Event(), list[list[dict[str, Any]]]()
        with self._lock:
            self._waiting[req_id] = (event, box)
        until = kw.get("until")
        try:
            self.hub.publish(ACTIONS, [{
                "id": req_id, "action": action, "alarms": list(alarms), "user": kw.get("user"),
                "roles": sorted(kw.get("roles") or ()), "sites": kw.get("sites"),
                "comment": kw.get("comment"), "reason": kw.get("reason"),
                "until": until.isoformat() if until else None}])
            if not event.wait(self.timeout):
                return [{"alarm": a, "ok": False, "status": 504,
                         "error": f"no answer from the alarm engine in {self.timeout:g} s"}
                        for a in alarms]
            return list(box[0])
        finally:
            with self._lock:
                self._waiting.pop(req_id, None)


def workflow_notifier(settings: Settings, db: Engine,
                      record_change: Callable[..., Any]) -> Callable[..., Any]:
    """``record_change`` that also accepts the notifications of ``notify/`` hooks (in the
    same transaction as the workflow transition)."""
    service = notification_service(settings, db)
    if service is None or not service.config.hooks:
        return record_change

    def hooked(conn: Connection, *, action: str, entity: str, record_id: Any,
               **kw: Any) -> Any:
        out = record_change(conn, action=action, entity=entity, record_id=record_id, **kw)
        if action.startswith("workflow."):
            from engine.auth.principal import optional_principal

            who = optional_principal()
            service.enqueue_workflow(conn, entity, action.split(".", 1)[1], record_id,
                                     kw.get("after"), who.username if who else None)
        return out

    return hooked


__all__ = ["AlarmWiring", "event_hub", "notification_service", "workflow_notifier"]
