"""``GET /api/health``: exactly ``{"status", "version", "database", "mqtt", "uptime_seconds"}``.

In the reference system's words:

- ``database``: ``connected`` when a real ``SELECT 1`` answers, else ``disconnected``;
- ``mqtt``: ``not_configured`` without ``settings.mqtt_url``, else ``connected`` or
  ``disconnected`` from a real connect through the MQTT transport (:func:`engine.mqtt.probe`:
  the same URL reading, TLS and credentials as the bus and the drivers) with a short
  timeout, cached for a few seconds so a probe every second does not open a connection
  every second;
- ``status``: ``healthy``; ``degraded`` when the database is connected but a configured
  broker is not (HTTP 200: the API still serves); ``unhealthy`` when the database is
  disconnected (HTTP 503, so load balancers, k3s probes and an update supervisor act on it);
- ``version``: the installed distribution's; ``uptime_seconds``: since this app was built.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
from flask import Response
from flask_smorest import Blueprint
from sqlalchemy.engine import Engine

from engine.mqtt import Broker, parse_broker

from .errors import json_response

if TYPE_CHECKING:
    from engine.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")

HEALTHY, DEGRADED, UNHEALTHY = "healthy", "degraded", "unhealthy"
CONNECTED, DISCONNECTED, NOT_CONFIGURED = "connected", "disconnected", "not_configured"

#: the answer's JSON Schema (published in the OpenAPI document for 200 and 503)
HEALTH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["status", "version", "database", "mqtt", "uptime_seconds"],
    "properties": {
        "status": {"type": "string", "enum": [HEALTHY, DEGRADED, UNHEALTHY],
                   "description": "unhealthy (HTTP 503): the database is disconnected; "
                                  "degraded: a configured MQTT broker is disconnected"},
        "version": {"type": "string", "example": "1.0.0"},
        "database": {"type": "string", "enum": [CONNECTED, DISCONNECTED]},
        "mqtt": {"type": "string", "enum": [CONNECTED, DISCONNECTED, NOT_CONFIGURED],
                 "description": "not_configured: no broker is set (CAMPO_MQTT_URL empty)"},
        "uptime_seconds": {"type": "number", "minimum": 0, "example": 86400},
    },
}


def campo_version() -> str:
    """The installed distribution's version."""
    try:
        return version("campo")
    except PackageNotFoundError:
        return "0+unknown"


class Health:
    """The health checks of one app."""

    def __init__(self, engine: Engine, broker: str | Broker | None, *,
                 cache_seconds: float = 5.0, timeout: float = 1.0) -> None:
        self.engine = engine
        #: the broker to check (a URL is read by engine.mqtt); None or "": not configured
        self.broker = parse_broker(broker) if broker else None
        self.cache_seconds = cache_seconds
        self.timeout = timeout
        self.started = time.monotonic()
        self.version = campo_version()
        self._lock = threading.Lock()
        self._mqtt: tuple[float, str] | None = None

    @classmethod
    def from_settings(cls, engine: Engine, settings: Settings) -> Health:
        """Checks of the deployment's database and broker (``CAMPO_MQTT_*``)."""
        return cls(engine, Broker.from_settings(settings) if settings.mqtt_url else None)

    def database(self) -> str:
        """``connected`` when ``SELECT 1`` answers, else ``disconnected``."""
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1")).scalar_one()
            return CONNECTED
        except Exception as exc:  # any failure means the database is not usable
            log.warning("health: database check failed: %s", str(exc).splitlines()[0])
            return DISCONNECTED

    def mqtt(self) -> str:
        """``not_configured``, or ``connected``/``disconnected`` from a connect at most every
        few seconds."""
        if self.broker is None:
            return NOT_CONFIGURED
        now = time.monotonic()
        with self._lock:
            if self._mqtt is not None and now - self._mqtt[0] < self.cache_seconds:
                return self._mqtt[1]
            from engine.mqtt import probe  # paho only where a broker is configured

            up, why = probe(self.broker, self.timeout)
            if not up:
                log.warning("health: %s", why)
            state = CONNECTED if up else DISCONNECTED
            self._mqtt = (time.monotonic(), state)
            return state

    def report(self) -> tuple[dict[str, object], int]:
        """The health document and its HTTP status."""
        database = self.database()
        mqtt = self.mqtt()
        if database != CONNECTED:
            status, code = UNHEALTHY, 503
        elif mqtt == DISCONNECTED:
            status, code = DEGRADED, 200
        else:
            status, code = HEALTHY, 200
        return ({"status": status, "version": self.version, "database": database,
                 "mqtt": mqtt, "uptime_seconds": round(time.monotonic() - self.started, 1)},
                code)


#: a probe every few milliseconds costs one check per second, not one per probe
REPORT_CACHE_SECONDS = 1.0


def cache_for(fn: Callable[[], T], seconds: float) -> Callable[[], T]:
    """``fn`` whose result is reused for ``seconds`` (one caller computes, others wait)."""
    lock = threading.Lock()
    box: list[Any] = [-math.inf, None]

    def cached() -> T:
        if time.monotonic() - box[0] < seconds:
            return box[1]  # type: ignore[no-any-return]
        with lock:
            if time.monotonic() - box[0] >= seconds:
                box[1] = fn()
                box[0] = time.monotonic()
            return box[1]  # type: ignore[no-any-return]

    return cached


def health_blueprint(health: Health) -> Blueprint:
    """The ``/api/health`` route."""
    blp = Blueprint("health", __name__, url_prefix="/api/health",
                    description="Liveness and dependencies")

    @blp.route("", endpoint="health")
    @blp.doc(summary="Health of the API, its database and its MQTT broker",
             security=[],  # public: probes and update supervisors call it without a token
             responses={"200": {"description": "healthy or degraded",
                                 "content": {"application/json": {"schema": HEALTH_SCHEMA}}},
                        "503": {"description": "unhealthy: the database is disconnected",
                                "content": {"application/json": {"schema": HEALTH_SCHEMA}}}})
    def get_health() -> Response:
        body, code = cached()
        return json_response(body, code)

    cached = cache_for(health.report, REPORT_CACHE_SECONDS)

    return blp
