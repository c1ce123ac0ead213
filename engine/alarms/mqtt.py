"""Alarm states on MQTT: the retained active set of each site, and every transition.

Topics (``CAMPO_ALARM_TOPIC``, default ``campo/alarms``):

- ``<topic>/<site>/active`` (retained, QoS 1): ``{"site", "ts", "alarms": [...]}``, every
  alarm of the site that is not normal, critical first: a client that connects later gets
  the current set at once;
- ``<topic>/<site>/events`` (QoS 1): each batch of transitions as it happens.

An unreachable broker never stops evaluation: paho queues and resends after reconnecting.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlparse

from .events import PRIORITY_RANK

log = logging.getLogger(__name__)


class AlarmPublisher:
    """An alarm-engine listener publishing to one broker."""

    def __init__(self, url: str, topic: str, active: Callable[[], list[dict[str, Any]]]) -> None:
        import paho.mqtt.client as mqtt

        u = urlparse(url)
        self.topic = topic.rstrip("/")
        self.active = active
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=f"campo-alarms-{uuid.uuid4().hex[:10]}")
        if u.username:
            self.client.username_pw_set(u.username, u.password)
        if u.scheme == "mqtts":
            self.client.tls_set()
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.connect_async(u.hostname or "127.0.0.1", u.port or 1883, keepalive=30)
        self.client.loop_start()

    def __call__(self, events: Sequence[dict[str, Any]]) -> None:
        """Publish the transitions and the new active set of every site they touch."""
        sites = sorted({e["site"] for e in events})
        for site in sites:
            mine = [e for e in events if e["site"] == site]
            self.client.publish(f"{self.topic}/{site}/events", json.dumps(mine, default=str),
                                qos=1)
        self.publish_active(sites)

    def publish_active(self, sites: Sequence[str] | None = None) -> None:
        """Publish the retained active set of ``sites`` (all sites with alarms when None)."""
        current = self.active()
        if sites is None:
            sites = sorted({e["site"] for e in current})
        for site in sites:
            items = sorted((e for e in current if e["site"] == site),
                           key=lambda e: (PRIORITY_RANK.get(e["priority"], 9),
                                          e.get("raised_at") or ""))
            body = {"site": site, "ts": dt.datetime.now(dt.UTC).isoformat(), "alarms": items}
            self.client.publish(f"{self.topic}/{site}/active", json.dumps(body, default=str),
                                qos=1, retain=True)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
