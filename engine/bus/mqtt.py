"""The MQTT bus: SCADA runtime and web server in separate processes, joined by Mosquitto.

Topics under ``prefix`` (default ``campo/bus``):

- ``<prefix>/v/<tag>``: the tag's latest value as JSON, retained, so a web process that
  starts later gets every current value at once;
- ``<prefix>/write/req``: write requests ``{"id", "tag", "value", "meta"}`` (QoS 1);
- ``<prefix>/write/res/<id>``: the outcome ``{"ok", "value", "error"}`` (QoS 1).

``mqtts://`` connects with TLS (port 8883 by default); the URL is read by
:mod:`engine.mqtt`, like every other broker URL of the engine. A broker outage never raises
to callers: publishing is queued by paho and resent after the reconnect, and a write
request times out with a clear error.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import paho.mqtt.client as mqtt

from engine.mqtt import Broker, Connection

from .base import Callback, LiveTable, LiveValue, Subscription, WriteHandler, WriteOutcome

log = logging.getLogger(__name__)


def _default(o: Any) -> Any:
    if hasattr(o, "isoformat"):
        return o.isoformat()
    return str(o)


class MqttBus:
    """Bus over the MQTT broker ``url`` (``mqtt://host:port``, ``mqtts://`` for TLS, or a
    :class:`engine.mqtt.Broker`), connected through :class:`engine.mqtt.Connection`."""

    def __init__(self, url: str | Broker, prefix: str = "campo/bus",
                 client_id: str | None = None) -> None:
        self.prefix = prefix.rstrip("/")
        self._table = LiveTable()
        self._writer: WriteHandler | None = None
        self._pending: dict[str, tuple[threading.Event, list[WriteOutcome]]] = {}
        self._lock = threading.Lock()
        self.connection = Connection(url, client_id=client_id, prefix="campo-bus",
                                     name="bus")
        self._client = self.connection.client
        self.connection.on_connect.append(self._on_connect)
        self.connection.on_message = self._on_message
        self.connection.start()

    @property
    def connected(self) -> bool:
        """True while the broker has accepted the connection."""
        return self.connection.connected

    def wait_connected(self, timeout: float = 5.0) -> bool:
        """Block until the broker accepted the connection (True) or ``timeout`` passed."""
        return self.connection.wait_connected(timeout)

    # paho callbacks (network thread)
    def _on_connect(self, client: mqtt.Client) -> None:
        client.subscribe([(f"{self.prefix}/v/#", 0), (f"{self.prefix}/write/res/#", 1)])
        if self._writer is not None:
            client.subscribe(f"{self.prefix}/write/req", 1)

    def _on_message(self, msg: mqtt.MQTTMessage) -> None:
        try:
            payload: Any = json.loads(msg.payload) if msg.payload else None
        except ValueError:
            log.warning("bus: ignoring a non-JSON message on %s", msg.topic)
            return
        topic = msg.topic
        try:
            if topic.startswith(f"{self.prefix}/v/") and payload:
                self._table.update([LiveValue.from_json(payload)])
            elif topic.startswith(f"{self.prefix}/write/res/"):
                req_id = topic.rsplit("/", 1)[-1]
                with self._lock:
                    waiter = self._pending.get(req_id)
                if waiter is not None:
                    waiter[1].append(WriteOutcome.from_json(payload))
                    waiter[0].set()
            elif topic == f"{self.prefix}/write/req" and self._writer is not None:
                threading.Thread(target=self._serve_one, args=(payload,), daemon=True).start()
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            log.warning("bus: malformed message on %s: %s", topic, exc)

    def _serve_one(self, req: dict[str, Any]) -> None:
        assert self._writer is not None
        try:
            out = self._writer(req["tag"], req.get("value"), req.get("meta") or {})
        except Exception as exc:  # answer every request, even when the handler fails
            log.exception("bus: write handler failed for %s", req.get("tag"))
            out = WriteOutcome(False, error=f"write failed: {exc}", status=502)
        self._client.publish(f"{self.prefix}/write/res/{req['id']}",
                             json.dumps(out.to_json(), default=_default), qos=1)

    # Bus API
    def publish(self, values: Sequence[LiveValue]) -> None:
        for v in values:
            self._client.publish(f"{self.prefix}/v/{v.tag}",
                                 json.dumps(v.to_json(), default=_default), qos=0, retain=True)

    def snapshot(self, patterns: Sequence[str] = ("**",)) -> list[LiveValue]:
        return self._table.snapshot(patterns)

    def latest(self, tags: Iterable[str]) -> dict[str, LiveValue]:
        return self._table.latest(tags)

    def subscribe(self, patterns: Sequence[str], callback: Callback) -> Subscription:
        return self._table.subscribe(patterns, callback)

    def serve_writes(self, handler: WriteHandler) -> None:
        self._writer = handler
        if self.connection.connected:
            self._client.subscribe(f"{self.prefix}/write/req", 1)

    def request_write(self, tag: str, value: Any, meta: dict[str, Any],
                      timeout: float = 5.0) -> WriteOutcome:
        req_id = uuid.uuid4().hex
        event: threading.Event = threading.Event()
        box: list[WriteOutcome] = []
        with self._lock:
            self._pending[req_id] = (event, box)
        try:
            if not self.connection.connected:
                return WriteOutcome(False, error="the MQTT broker is not reachable", status=503)
            self._client.publish(f"{self.prefix}/write/req",
                                 json.dumps({"id": req_id, "tag": tag, "value": value,
                                             "meta": meta}, default=_default), qos=1)
            if not event.wait(timeout):
                return WriteOutcome(False, error=f"no answer from the SCADA runtime in {timeout} s",
                                    status=504)
            return box[0]
        finally:
            with self._lock:
                self._pending.pop(req_id, None)

    def close(self) -> None:
        self.connection.stop()
