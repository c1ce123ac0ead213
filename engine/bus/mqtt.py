"""The MQTT bus: SCADA runtime and web server in separate processes, joined by Mosquitto.

Topics under ``prefix`` (default ``campo/bus``):

- ``<prefix>/v/<tag>``: the tag's latest value as JSON, retained, so a web process that
  starts later gets every current value at once;
- ``<prefix>/write/req``: write requests ``{"id", "tag", "value", "meta"}`` (QoS 1);
- ``<prefix>/write/res/<id>``: the outcome ``{"ok", "value", "error"}`` (QoS 1).

A broker outage never raises to callers: publishing is queued by paho and resent after the
reconnect, and a write request times out with a clear error.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlparse

import paho.mqtt.client as mqtt

from .base import Callback, LiveTable, LiveValue, Subscription, WriteHandler, WriteOutcome

log = logging.getLogger(__name__)


def _default(o: Any) -> Any:
    if hasattr(o, "isoformat"):
        return o.isoformat()
    return str(o)


class MqttBus:
    """Bus over an MQTT broker given as ``mqtt://host:port``."""

    def __init__(self, url: str, prefix: str = "campo/bus", client_id: str | None = None) -> None:
        u = urlparse(url)
        self.prefix = prefix.rstrip("/")
        self._table = LiveTable()
        self._writer: WriteHandler | None = None
        self._pending: dict[str, tuple[threading.Event, list[WriteOutcome]]] = {}
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                   client_id=client_id or f"campo-bus-{uuid.uuid4().hex[:10]}")
        if u.username:
            self._client.username_pw_set(u.username, u.password)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)
        self._client.connect_async(u.hostname or "127.0.0.1", u.port or 1883, keepalive=30)
        self._client.loop_start()

    def wait_connected(self, timeout: float = 5.0) -> bool:
        """Block until the broker accepted the connection (True) or ``timeout`` passed."""
        return self._connected.wait(timeout)

    # paho callbacks (network thread)
    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any = None) -> None:
        if getattr(rc, "is_failure", False):
            log.error("bus: broker refused the connection: %s", rc)
            return
        client.subscribe([(f"{self.prefix}/v/#", 0), (f"{self.prefix}/write/res/#", 1)])
        if self._writer is not None:
            client.subscribe(f"{self.prefix}/write/req", 1)
        if not self._connected.is_set():
            log.info("bus: connected to the broker")
        self._connected.set()

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, rc: Any, _p: Any = None) -> None:
        if self._connected.is_set():
            log.warning("bus: lost the broker (%s); reconnecting", rc)
        self._connected.clear()

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            payload = json.loads(msg.payload) if msg.payload else None
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
        if self._connected.is_set():
            self._client.subscribe(f"{self.prefix}/write/req", 1)

    def request_write(self, tag: str, value: Any, meta: dict[str, Any],
                      timeout: float = 5.0) -> WriteOutcome:
        req_id = uuid.uuid4().hex
        event: threading.Event = threading.Event()
        box: list[WriteOutcome] = []
        with self._lock:
            self._pending[req_id] = (event, box)
        try:
            if not self._connected.is_set():
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
        self._client.loop_stop()
        self._client.disconnect()
