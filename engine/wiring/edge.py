"""The edge process: the SCADA runtime, the bus and the live-tag API beside ``campo serve``.

This module is wiring (:mod:`engine.wiring`): it imports both the SCADA side
(:mod:`engine.scada`) and the web side (:mod:`engine.live`), which never import each other.
Listed in :data:`engine.wiring.plugins.SERVE_PLUGINS`; ``campo serve`` calls
:func:`serve_plugin`, then

- ``init_app(app, api)``: registers ``/api/tags``, ``/api/ws`` and ``/api/scada/status``
  (the runtime's devices, scan overruns and sinks: from this process, or reported over the
  bus by ``campo scada``);
- ``start()``: starts the runtime thread (when ``tags/`` defines devices and
  ``CAMPO_SCADA`` is true), publishes every tag change to the bus and serves write requests;
- ``stop()``: stops both.

With ``CAMPO_BUS=mqtt`` the web process only reads the bus; run the runtime elsewhere
with ``campo scada`` (same project, same broker).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from flask import Flask
from flask_smorest import Api
from sqlalchemy.engine import Engine

from engine.bus import Bus, InProcessBus, LiveValue, WriteOutcome
from engine.bus.policy import Caller
from engine.errors import UserError
from engine.mqtt import Broker
from engine.options import add_database_option, add_project_option, settings_from
from engine.rules import load_model
from engine.settings import Settings
from metamodel import DefinitionError, Model
from metamodel.project import load_model_tags
from metamodel.tags import TagModel, load_tags, tag_files

from .history import HistorianSink, history_service, init_history, make_historian

log = logging.getLogger(__name__)


def to_live(values: Sequence[Any]) -> list[LiveValue]:
    """Runtime ``TagValue``s as bus messages."""
    return [LiveValue(v.tag, v.value, v.quality.name.lower(), v.ts, v.reason) for v in values]


def make_bus(settings: Settings) -> Bus:
    """The bus the settings ask for."""
    if settings.bus == "mqtt":
        from engine.bus.mqtt import MqttBus

        if not settings.mqtt_url:
            raise ValueError("CAMPO_BUS=mqtt needs CAMPO_MQTT_URL")
        return MqttBus(Broker.from_settings(settings), prefix=settings.bus_prefix)
    if settings.bus != "inproc":
        raise ValueError(f"CAMPO_BUS must be 'inproc' or 'mqtt', not {settings.bus!r}")
    return InProcessBus()


_loaded: dict[tuple[Any, ...], TagModel] = {}


def load_site_tags(project: Path, model: Model | None) -> TagModel | None:
    """The project's tag model, or None when it has no ``tags/`` files; checked against
    ``model`` when given (write roles, bindings: :func:`metamodel.project.load_model_tags`).

    Remembered per set of files (path, size, mtime), model and environment: ``campo serve``
    checks the tags in the gunicorn master and its forked worker reuses the result.
    """
    files = tag_files(project)
    if not files:
        return None
    shape = None if model is None else (
        tuple(sorted(model.roles)),
        tuple((q, tuple((k, f.type, f.unique) for k, f in e.fields.items()))
              for q, e in sorted(model.entities.items())))
    environ = dict(os.environ)
    key = (tuple((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files), shape,
           tuple(sorted(environ.items())))
    if key not in _loaded:
        _loaded.clear()
        tags = (load_tags(project, environ=environ) if model is None
                else load_model_tags(project, model, environ=environ))
        assert tags is not None
        _loaded[key] = tags
    return _loaded[key]


def upstream_wanted(settings: Settings) -> bool:
    """Whether the settings ask for upstream JSON or a Sparkplug edge node."""
    return bool(settings.mqtt_url and (settings.upstream_topic or (
        settings.sparkplug_group and settings.sparkplug_node)))


def upstream_sinks(tags: TagModel, settings: Settings,
                   extra_metrics: Mapping[str, int] | None = None) -> list[Any]:
    """The upstream sinks the settings ask for (:mod:`engine.scada.upstream`): retained JSON
    per tag on ``CAMPO_UPSTREAM_TOPIC``, and a Sparkplug B edge node whose metrics are the
    tags plus ``extra_metrics`` (the alarms' states, :mod:`engine.wiring.alarms`), its bdSeq
    kept in the data folder."""
    from engine.scada.sparkplug import bd_seq_path, datatypes_from
    from engine.scada.upstream import JsonUpstreamSink, SparkplugSink

    out: list[Any] = []
    if not upstream_wanted(settings):
        return out
    s = settings
    if s.upstream_topic:
        out.append(JsonUpstreamSink(Broker.from_settings(s), s.upstream_topic,
                                    site=next(iter(tags.sites), "")))
    if s.sparkplug_group and s.sparkplug_node:
        out.append(SparkplugSink(
            Broker.from_settings(s), s.sparkplug_group, s.sparkplug_node,
            {**datatypes_from(tags.tags.values()), **dict(extra_metrics or {})},
            bd_seq_file=bd_seq_path(s.resolved_data_dir(), s.sparkplug_group,
                                    s.sparkplug_node)))
    return out


class RuntimeBridge:
    """Runs the SCADA runtime in a thread and joins it to a bus (and upstream MQTT)."""

    def __init__(self, tags: TagModel, bus: Bus, settings: Settings | None = None,
                 sinks: Sequence[Any] = (), extra_metrics: Mapping[str, int] | None = None,
                 status_hub: Any = None) -> None:
        from engine.scada.runtime import Runtime, RuntimeThread

        self.bus = bus
        #: where the runtime's status is reported every REPORT_SECONDS (``campo scada``:
        #: the web processes read it from the bus for ``GET /api/scada/status``)
        self.status_hub = status_hub
        self._reports: Any = None
        self._stopping = threading.Event()
        self.thread = RuntimeThread(Runtime(tags))
        for sink in sinks:  # the alarm engine (engine.wiring.alarms), the historian
            self.thread.runtime.add_sink(sink)
        #: the Sparkplug edge node's queue, when there is one (sparkplug_publish offers to it)
        self.sparkplug: Any = None
        for sink in upstream_sinks(tags, settings, extra_metrics) if settings else ():
            # on the runtime's loop: the MQTT link and the edge node belong to it
            queued = self.thread.runtime.add_sink(sink, thread=False)
            if sink.name == "sparkplug":
                self.sparkplug = queued
        self._sub: Any = None

    def start(self) -> None:
        """Start polling; every change goes to the bus, the bus's writes come here."""
        self.thread.start()
        self._sub = self.thread.subscribe("**", lambda vs: self.bus.publish(to_live(vs)))
        self.bus.publish(to_live(list(self.thread.snapshot().values())))
        self.bus.serve_writes(self.write)
        if self.status_hub is not None:
            self._reports = threading.Thread(target=self._report_status, daemon=True,
                                             name="campo-scada-status")
            self._reports.start()

    def status(self) -> dict[str, Any]:
        """The runtime's status (``Runtime.status``), any thread."""
        return self.thread.status()

    def _report_status(self) -> None:
        from engine.live.scada_views import CHANNEL, REPORT_SECONDS

        while True:
            try:
                self.status_hub.publish(CHANNEL, [self.status()])
            except Exception:  # the bus is away: the next report tries again
                log.debug("scada status report failed", exc_info=True)
            if self._stopping.wait(REPORT_SECONDS):
                return

    def sparkplug_publish(self, values: Sequence[Any]) -> None:
        """Queue values that are no tags (the alarms' states) for the Sparkplug edge node,
        behind the tag changes already queued (any thread)."""
        if self.sparkplug is not None:
            self.sparkplug.offer(list(values))

    def write(self, tag: str, value: Any, meta: dict[str, Any]) -> WriteOutcome:
        """Bus write handler: write through the runtime, confirmed by read-back.

        The caller's roles and sites come in ``meta`` (:meth:`Caller.to_meta`); the runtime
        applies the same write policy as the web side.
        """
        from engine.scada.runtime import WriteError

        timeout = float(meta.get("timeout") or 10.0)
        try:
            result = self.thread.write(tag, value, Caller.from_meta(meta), timeout=timeout)
        except WriteError as err:
            return WriteOutcome(False, error=err.message, status=err.status)
        return WriteOutcome(True, result.value, rounded=result.rounded, note=result.note)

    def stop(self) -> None:
        self._stopping.set()
        if self._reports is not None:
            self._reports.join(5)
        if self._sub is not None:
            self._sub.cancel()
        self.thread.stop()  # stops the sinks (upstream, Sparkplug: NDEATH) after the last batch


class EdgePlugin:
    """What ``campo serve`` runs beside the API (see the module docstring)."""

    def __init__(self, tags: TagModel | None, bus: Bus, engine: Engine,
                 run_runtime: bool, settings: Settings | None = None,
                 model: Model | None = None) -> None:
        from engine.live import LiveTags

        from .alarms import AlarmWiring, event_hub

        self.tags = tags
        self.engine = engine
        self.settings = settings
        self.model = model
        self.rollups: Any = None
        self.bus = bus
        self.live = LiveTags(tags, bus, engine)
        self.hub: Any = None
        self.app: Flask | None = None
        runs = tags is not None and run_runtime
        historian = make_historian(settings, tags, engine) if (
            runs and settings is not None and tags is not None) else None
        self.alarms = AlarmWiring(tags, engine, settings, event_hub(settings),
                                  run_engine=run_runtime) if (
            tags is not None and settings is not None) else None
        sinks = [*(self.alarms.sinks if self.alarms else ()),
                 *((HistorianSink(historian),) if historian is not None else ())]
        self.bridge = (RuntimeBridge(tags, bus, settings, sinks,
                                     self.alarms.sparkplug_metrics() if self.alarms else None)
                       if (tags is not None and run_runtime) else None)
        self.history = history_service(settings or Settings(), engine, live_status=None if (
            historian is None) else historian.status)
        from engine.live.scada_views import ScadaStatus

        self.scada_status = ScadaStatus(
            local=self.bridge.status if self.bridge is not None else None,
            hub=self.alarms.hub if self.alarms is not None else None)

    def init_app(self, app: Flask, api: Api) -> None:
        from engine.live import init_live

        self.app = app  # the ERP rollups write through it (engine.wiring.history_erp)

        self.hub = init_live(app, api, self.live)
        init_history(app, api, self.history)
        from engine.live.scada_views import init_scada_status

        init_scada_status(app, api, self.scada_status)
        if self.alarms is not None:
            self.alarms.init_app(app, api)

    def start(self) -> None:
        if self.alarms is not None:
            self.alarms.start()
        if self.bridge is not None:
            self.bridge.start()
            if self.alarms is not None:
                self.alarms.attach_sparkplug(self.bridge.sparkplug_publish)
            log.info("SCADA runtime started: %d tags", len(self.tags.tags) if self.tags else 0)
        if self.model is not None and self.tags is not None and self.settings is not None \
                and self.settings.history:
            from .history_erp import RollupScheduler, make_rollups

            rollups = make_rollups(self.settings, self.model, self.tags, self.engine,
                                   self.app)
            if rollups is not None:
                self.rollups = RollupScheduler(rollups)
                self.rollups.start()

    def stop(self) -> None:
        if self.rollups is not None:
            self.rollups.stop()
        if self.hub is not None:
            self.hub.stop()  # close the sockets (1001) before the bus goes
        if self.bridge is not None:
            self.bridge.stop()
        self.history.close()
        self.scada_status.close()
        if self.alarms is not None:
            self.alarms.stop()
        self.bus.close()


def serve_plugin(model: Model, engine: Engine, settings: Settings) -> EdgePlugin:
    """``campo serve`` plugin: live tags always; the runtime when tags and settings allow."""
    try:
        tags = load_site_tags(settings.project, model)
    except DefinitionError as err:
        raise UserError(err.report()) from None
    try:
        bus = make_bus(settings)
    except ValueError as err:
        raise UserError(str(err)) from None
    return EdgePlugin(tags, bus, engine, settings.scada and settings.bus == "inproc", settings,
                      model)


def register(subparsers: Any) -> None:
    """Add ``campo scada``: the runtime alone, joined to web processes over MQTT."""
    p = subparsers.add_parser(
        "scada", help="run the SCADA runtime alone, publishing to the MQTT bus",
        description="Poll the devices of tags/ and publish every change to the MQTT bus "
                    "(CAMPO_MQTT_URL, CAMPO_BUS_PREFIX); serve the write requests of web "
                    "processes started with CAMPO_BUS=mqtt.")
    add_project_option(p)
    add_database_option(p)
    p.add_argument("--mqtt-url", default=None, help="broker, e.g. mqtt://127.0.0.1:1883")
    p.set_defaults(handler=scada_command)


def scada_command(args: Any) -> int:
    """Handler of ``campo scada``: runs until SIGINT/SIGTERM."""
    import signal
    import threading

    from engine.bus.mqtt import MqttBus

    settings = settings_from(args)
    if not settings.mqtt_url:
        raise UserError("campo scada needs a broker: --mqtt-url or CAMPO_MQTT_URL")
    model = load_model(settings)
    try:
        tags = load_site_tags(settings.project, model)
    except DefinitionError as err:
        raise UserError(err.report()) from None
    if tags is None:
        raise UserError(f"{settings.project}: no tags/ definitions to poll")
    bus = MqttBus(Broker.from_settings(settings), prefix=settings.bus_prefix)
    if not bus.wait_connected(10):
        log.warning("broker %s not reachable yet; values are queued until it is",
                    bus.connection.broker.url)
    from engine.bus.events import MqttEventHub
    from engine.db import create_engine_for

    from .alarms import AlarmWiring

    # campo scada speaks to its web processes over MQTT whatever CAMPO_BUS says: alarm
    # events and actions and the runtime's status reports go on the bus's event channels
    hub = MqttEventHub(Broker.from_settings(settings), settings.bus_prefix)
    alarms = AlarmWiring(tags, create_engine_for(settings.resolved_database_url()), settings,
                         hub, run_engine=True)
    historian = make_historian(settings, tags)
    bridge = RuntimeBridge(tags, bus, settings, [
        *alarms.sinks, *((HistorianSink(historian),) if historian is not None else ())],
        alarms.sparkplug_metrics(), status_hub=hub)
    alarms.start()
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    bridge.start()
    alarms.attach_sparkplug(bridge.sparkplug_publish)
    print(f"scada runtime: {len(tags.tags)} tags, bus {bus.connection.broker.url} "
          f"prefix {settings.bus_prefix}", flush=True)
    try:
        done.wait()
    finally:
        bridge.stop()
        alarms.stop()
        bus.close()
    return 0
