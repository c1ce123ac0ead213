"""``GET /api/scada/status``: how the SCADA runtime keeps up, per device and scan class.

The figures come from the runtime (``engine.scada.runtime.Runtime.status``): in this process
when ``campo serve`` runs it, else the last report a ``campo scada`` process published on the
bus's ``scada_status`` event channel (every :data:`REPORT_SECONDS`; ``stale`` once it is
older than three reports). This package never imports ``engine.scada``: the report is a
plain dict.

Who sees what follows tag reads: any signed-in user, devices of the sites they may see
(``Principal.may_see_site``, as ``access.tag_visible`` decides for tags), the scan plan's
problems of those devices only; the sinks' figures (not bound to a site) only to callers
who see every site.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from flask import Flask
from flask_smorest import Api, Blueprint

from engine.auth import current_principal
from engine.bus.events import EventHub

#: the bus channel a runtime in another process reports on
CHANNEL = "scada_status"
#: seconds between two reports of a runtime in another process
REPORT_SECONDS = 5.0

Report = dict[str, Any]

_SCAN_CLASS = {"type": "object", "additionalProperties": True, "properties": {
    "scan_class": {"type": "string"}, "period": {"type": "number"},
    "tags": {"type": "integer"}, "scans": {"type": "integer"},
    "overruns": {"type": "integer", "description": "ticks skipped: the previous scan was "
                                                   "still queued or running"},
    "last_duration": {"type": "number", "nullable": True},
    "max_duration": {"type": "number"},
    "actual_period": {"type": "number", "nullable": True,
                      "description": "mean seconds between the starts of the last scans"},
    "age": {"type": "number", "nullable": True,
            "description": "seconds since the last scan ended"},
    "behind": {"type": "boolean"}}}
_DEVICE = {"type": "object", "additionalProperties": True, "properties": {
    "device": {"type": "string"}, "site": {"type": "string"}, "type": {"type": "string"},
    "tags": {"type": "integer"},
    "state": {"type": "string",
              "enum": ["online", "offline", "connecting", "disabled", "unavailable"]},
    "reason": {"type": "string", "nullable": True,
               "description": "the reason the device's tags carry while it is not online"},
    "last_error": {"type": "string", "nullable": True},
    "offline_since": {"type": "string", "format": "date-time", "nullable": True},
    "failed_attempts": {"type": "integer"},
    "next_attempt_in": {"type": "number", "nullable": True},
    "queued": {"type": "integer"},
    "plan_problems": {"type": "array", "items": {"type": "string"}},
    "behind": {"type": "boolean"},
    "scan_classes": {"type": "array", "items": _SCAN_CLASS}}}
_SINK = {"type": "object", "additionalProperties": True, "properties": {
    "name": {"type": "string"}, "mode": {"type": "string"}, "backlog": {"type": "integer"},
    "published": {"type": "integer"}, "dropped": {"type": "integer"},
    "failures": {"type": "integer"}, "last_error": {"type": "string", "nullable": True},
    "lag_seconds": {"type": "number"}}}
_DOCS = {"200": {"description": "the runtime's devices, scan classes, scan plan and sinks",
                 "content": {"application/json": {"schema": {
                     "type": "object", "properties": {
                         "running": {"type": "boolean"},
                         "source": {"type": "string", "enum": ["local", "remote", "none"]},
                         "reported_at": {"type": "string", "format": "date-time",
                                         "nullable": True},
                         "stale": {"type": "boolean"},
                         "plan": {"type": "object", "properties": {
                             "ok": {"type": "boolean"},
                             "problems": {"type": "array", "items": {"type": "string"}}}},
                         "devices": {"type": "array", "items": _DEVICE},
                         "sinks": {"type": "array", "items": _SINK}}}}}},
         "401": {"description": "not signed in"}}


class ScadaStatus:
    """The runtime's report: from this process (``local``) or from the bus (``hub``)."""

    def __init__(self, local: Callable[[], Report] | None = None,
                 hub: EventHub | None = None) -> None:
        self.local = local
        self._lock = threading.Lock()
        self._remote: Report | None = None
        self._received = 0.0
        self._sub = hub.subscribe(CHANNEL, self._on_report) if (
            hub is not None and local is None) else None

    def _on_report(self, events: Any) -> None:
        for e in events:
            if isinstance(e, dict) and isinstance(e.get("devices"), list):
                with self._lock:
                    self._remote, self._received = e, time.monotonic()

    def report(self) -> tuple[Report | None, str, bool]:
        """The latest report, where it came from and whether it is stale."""
        if self.local is not None:
            return self.local(), "local", False
        with self._lock:
            remote, received = self._remote, self._received
        if remote is None:
            return None, "none", False
        return remote, "remote", time.monotonic() - received > 3 * REPORT_SECONDS

    def for_viewer(self, viewer: Any) -> Report:
        """The report cut to what ``viewer`` may see (see the module docstring)."""
        report, source, stale = self.report()
        if report is None:
            return {"running": False, "source": source, "reported_at": None, "stale": False,
                    "plan": {"ok": True, "problems": []}, "devices": [], "sinks": []}
        devices = [d for d in report.get("devices", ()) if viewer.may_see_site(d.get("site"))]
        problems = [p for d in devices for p in d.get("plan_problems", ())]
        return {"running": bool(report.get("running")), "source": source,
                "reported_at": report.get("reported_at"), "stale": stale,
                "plan": {"ok": not problems, "problems": problems}, "devices": devices,
                "sinks": list(report.get("sinks", ())) if viewer.all_sites else []}

    def close(self) -> None:
        if self._sub is not None:
            self._sub.close()
            self._sub = None


def build_blueprint(service: ScadaStatus) -> Blueprint:
    """The ``/api/scada`` blueprint."""
    blp = Blueprint("scada", __name__, url_prefix="/api/scada",
                    description="The SCADA runtime: devices, scan overruns, sinks")

    @blp.route("/status")
    @blp.doc(responses=_DOCS)
    def get_status() -> Report:
        """Per device (of your sites): state, reason, next reconnect attempt; per scan
        class: scans, overruns, durations, the actual period and the data's age; the scan
        plan's problems; the sinks' backlogs."""
        return service.for_viewer(current_principal())

    return blp


def init_scada_status(app: Flask, api: Api, service: ScadaStatus) -> None:
    """Register ``/api/scada/status`` (in the OpenAPI document)."""
    app.extensions["campo_scada_status"] = service
    api.register_blueprint(build_blueprint(service))


__all__ = ["CHANNEL", "REPORT_SECONDS", "ScadaStatus", "build_blueprint", "init_scada_status"]
