"""``GET /api/health``: ``{"status", "version", "database", "mqtt", "uptime_seconds"}``.

``database`` runs a real ``SELECT 1``. ``mqtt`` is ``disabled`` without ``settings.mqtt_url``,
else the result of a real MQTT 3.1.1 CONNECT/CONNACK handshake with a short timeout, cached
for a few seconds so a probe every second does not open a connection every second.
``status`` is ``ok``, ``degraded`` (database fine, broker down: 200) or ``error`` (database
down: 503, so an update supervisor rolls back).
"""

from __future__ import annotations

import logging
import math
import os
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from typing import Any, TypeVar
from urllib.parse import unquote, urlparse

import sqlalchemy as sa
from flask import Response
from flask_smorest import Blueprint
from sqlalchemy.engine import Engine

from .errors import json_response

log = logging.getLogger(__name__)

T = TypeVar("T")


def campo_version() -> str:
    """The installed distribution's version."""
    try:
        return version("campo")
    except PackageNotFoundError:
        return "0+unknown"


def _mqtt_string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("!H", len(data)) + data


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def mqtt_handshake(url: str, timeout: float = 1.0) -> bool:
    """Connect to the broker at ``url`` (mqtt:// or mqtts://), CONNECT, expect CONNACK 0."""
    u = urlparse(url)
    tls = u.scheme in ("mqtts", "ssl")
    host, port = u.hostname or "127.0.0.1", u.port or (8883 if tls else 1883)
    flags = 0x02  # clean session
    payload = _mqtt_string(f"campo-health-{os.getpid()}-{threading.get_ident() % 10_000}")
    if u.username:
        flags |= 0x80
        payload += _mqtt_string(unquote(u.username))
        if u.password:
            flags |= 0x40
            payload += _mqtt_string(unquote(u.password))
    variable = _mqtt_string("MQTT") + bytes([4, flags]) + struct.pack("!H", 10)
    body = variable + payload
    packet = bytes([0x10]) + _remaining_length(len(body)) + body
    with socket.create_connection((host, port), timeout=timeout) as raw:
        sock: socket.socket = raw
        if tls:
            sock = ssl.create_default_context().wrap_socket(raw, server_hostname=host)
        sock.settimeout(timeout)
        sock.sendall(packet)
        answer = b""
        while len(answer) < 4:
            chunk = sock.recv(4 - len(answer))
            if not chunk:
                return False
            answer += chunk
        ok = answer[0] == 0x20 and answer[3] == 0
        if ok:
            sock.sendall(b"\xe0\x00")  # DISCONNECT
        return ok


class Health:
    """The health checks of one app."""

    def __init__(self, engine: Engine, mqtt_url: str, *, cache_seconds: float = 5.0,
                 timeout: float = 1.0) -> None:
        self.engine = engine
        self.mqtt_url = mqtt_url
        self.cache_seconds = cache_seconds
        self.timeout = timeout
        self.started = time.monotonic()
        self.version = campo_version()
        self._lock = threading.Lock()
        self._mqtt: tuple[float, str] | None = None

    def database(self) -> str:
        """``ok`` when ``SELECT 1`` answers, else ``error``."""
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1")).scalar_one()
            return "ok"
        except Exception as exc:  # any failure means the database is not usable
            log.warning("health: database check failed: %s", str(exc).splitlines()[0])
            return "error"

    def mqtt(self) -> str:
        """``disabled``, or ``ok``/``error`` from a handshake at most every few seconds."""
        if not self.mqtt_url:
            return "disabled"
        now = time.monotonic()
        with self._lock:
            if self._mqtt is not None and now - self._mqtt[0] < self.cache_seconds:
                return self._mqtt[1]
            try:
                state = "ok" if mqtt_handshake(self.mqtt_url, self.timeout) else "error"
            except (OSError, ValueError) as exc:
                log.warning("health: MQTT broker %s unreachable: %s", self.mqtt_url, exc)
                state = "error"
            self._mqtt = (time.monotonic(), state)
            return state

    def report(self) -> tuple[dict[str, object], int]:
        """The health document and its HTTP status."""
        database = self.database()
        mqtt = self.mqtt()
        if database != "ok":
            status, code = "error", 503
        elif mqtt == "error":
            status, code = "degraded", 200
        else:
            status, code = "ok", 200
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
             responses={"200": {"description": "ok or degraded"},
                        "503": {"description": "the database is down"}})
    def get_health() -> Response:
        body, code = cached()
        return json_response(body, code)

    cached = cache_for(health.report, REPORT_CACHE_SECONDS)

    return blp
