"""Typed event channels beside the tag values: alarm events from the runtime to the web side.

A channel carries batches of JSON-ready dicts (``"alarms"``: one dict per alarm transition,
see :mod:`engine.alarms.events`). :class:`EventHub` delivers in the process;
:class:`MqttEventHub` also publishes each batch to ``<prefix>/events/<channel>`` (QoS 1) and
delivers what other processes publish there, so a web process apart from the runtime
(``CAMPO_BUS=mqtt``) pushes alarm events on its WebSockets too. Subscriber callbacks must be
quick (they queue and return); a failing one is logged and skipped.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from engine.mqtt import Broker

log = logging.getLogger(__name__)

Events = Sequence[dict[str, Any]]
EventCallback = Callable[[Events], None]


class EventSubscription:
    """One callback on one channel; :meth:`close` stops it."""

    def __init__(self, hub: EventHub, channel: str, callback: EventCallback) -> None:
        self.hub = hub
        self.channel = channel
        self.callback = callback

    def close(self) -> None:
        self.hub._remove(self)


class EventHub:
    """In-process event channels."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subs: dict[str, list[EventSubscription]] = {}

    def publish(self, channel: str, events: Events) -> None:
        """Deliver ``events`` to the channel's subscribers."""
        self._deliver(channel, events)

    def _deliver(self, channel: str, events: Events) -> None:
        with self._lock:
            subs = list(self._subs.get(channel, ()))
        for s in subs:
            try:
                s.callback(events)
            except Exception:  # one subscriber's problem is not the publisher's
                log.exception("event subscriber on %s failed", channel)

    def subscribe(self, channel: str, callback: EventCallback) -> EventSubscription:
        """Call ``callback(events)`` for every batch on ``channel``."""
        sub = EventSubscription(self, channel, callback)
        with self._lock:
            self._subs.setdefault(channel, []).append(sub)
        return sub

    def _remove(self, sub: EventSubscription) -> None:
        with self._lock:
            subs = self._subs.get(sub.channel, [])
            if sub in subs:
                subs.remove(sub)

    def close(self) -> None:
        with self._lock:
            self._subs.clear()


class MqttEventHub(EventHub):
    """Event channels shared over MQTT under ``<prefix>/events/<channel>``."""

    def __init__(self, url: str | Broker, prefix: str = "campo/bus") -> None:
        super().__init__()
        from engine.mqtt import Connection  # paho only in processes that connect

        self.prefix = prefix.rstrip("/")
        self._me = uuid.uuid4().hex[:12]
        self.connection = Connection(url, client_id=f"campo-events-{self._me}", name="events")
        self._client = self.connection.client
        self.connection.on_connect.append(self._on_connect)
        self.connection.on_message = self._on_message
        self.connection.start()

    def publish(self, channel: str, events: Events) -> None:
        """Deliver here and publish for the other processes."""
        self._deliver(channel, events)
        body = json.dumps({"from": self._me, "events": list(events)}, default=str)
        self._client.publish(f"{self.prefix}/events/{channel}", body, qos=1)

    def _on_connect(self, client: Any) -> None:
        client.subscribe(f"{self.prefix}/events/#", 1)

    def _on_message(self, msg: Any) -> None:
        try:
            data = json.loads(msg.payload)
            if data.get("from") == self._me:
                return  # delivered already
            channel = msg.topic.rsplit("/", 1)[-1]
            self._deliver(channel, list(data.get("events") or []))
        except (ValueError, TypeError, AttributeError) as exc:
            log.warning("events: malformed message on %s: %s", msg.topic, exc)

    def close(self) -> None:
        super().close()
        self.connection.stop()


__all__ = ["EventHub", "EventSubscription", "MqttEventHub"]
