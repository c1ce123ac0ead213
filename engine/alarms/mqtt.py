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
from collections.abc import Callable, Sequence
from typing import Any

from engine.mqtt import Broker

from .events import PRIORITY_RANK

log = logging.getLogger(__name__)


class AlarmPublisher:
    """An alarm-engine listener publishing to one broker."""

    def __init__(self, url: str | Broker, topic: str,
                 active: Callable[[], list[dict[str, Any]]]) -> None:
        from engine.mqtt import Connection  # paho only in processes that connect

        self.topic = topic.rstrip("/")
        self.active = active
        self.connection = Connection(url, prefix="campo-alarms", name="alarms")
        self.client = self.connection.client
        self.connection.start()

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
        self.connection.stop()
