"""MQTT driver (paho-mqtt 2.2 bridged to asyncio): JSON tags, Sparkplug B, upstream publishing.

:class:`MqttLink` owns one paho client running its network loop in paho's thread; its
callbacks are handed to the asyncio loop with ``call_soon_threadsafe``. paho reconnects on
its own (``reconnect_delay_set``) and the link subscribes again to every filter on each
connect, so retained values arrive again after a broker restart.

:class:`MqttDriver` implements the runtime's Driver protocol over a link:

- JSON tags: a topic and a value path into the payload (``data.pip``, ``$.data.pip``,
  ``values[0]``; none: the whole payload), optionally a timestamp path;
- Sparkplug B tags: a metric of an edge node (and device), decoded by
  :class:`engine.scada.sparkplug.SparkplugHost` (births, aliases, sequence numbers,
  rebirth requests, deaths).

:class:`MqttPublisher` publishes every tag change upstream as retained JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as mqtt

from engine.mqtt import Broker, Connection, parse_broker

from ..registry import NoDriver
from ..sparkplug import SparkplugHost, node_filter
from ..types import DeviceUnavailable, PointRef, Quality, Reading, TagValue, Value, WriteFailed

if TYPE_CHECKING:
    from metamodel.tags import Device, Tag

log = logging.getLogger(__name__)

Handler = Callable[[str, bytes, bool], None]
Listener = Callable[[str, Reading], None]
_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


# --------------------------------------------------------------------------- the link
class MqttLink:
    """One broker connection shared by a driver, a publisher or an edge node.

    ``url`` is read by :mod:`engine.mqtt` (``mqtts://`` = TLS on 8883, credentials, CA
    file); ``username``/``password``/``client_id`` override the URL's.
    """

    def __init__(self, url: str | Broker, *, client_id: str | None = None,
                 username: str | None = None, password: str | None = None,
                 keepalive: int = 30, reconnect_delay: float = 0.5,
                 reconnect_delay_max: float = 30.0, name: str | None = None) -> None:
        broker = parse_broker(url, username=username, password=password, client_id=client_id)
        self.connection = Connection(broker, keepalive=keepalive,
                                     reconnect_delay=reconnect_delay,
                                     reconnect_delay_max=reconnect_delay_max, name=name)
        self.broker = broker
        self.host = broker.host
        self.port = broker.port
        self.name = self.connection.name
        self.client_id = self.connection.client_id
        self._client = self.connection.client
        self._filters: dict[str, tuple[int, list[Handler]]] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._up: asyncio.Event | None = None
        #: called in the asyncio loop after every (re)connect and every loss
        self.on_connected: list[Callable[[], None]] = []
        self.on_disconnected: list[Callable[[str], None]] = []
        self.connection.on_connect.append(self._on_connect)
        self.connection.on_disconnect.append(self._on_disconnect)
        self.connection.on_message = self._on_message

    @property
    def before_connect(self) -> Callable[[], None] | None:
        """Called in paho's thread just before each connection attempt (Sparkplug will)."""
        return self.connection.before_connect

    @before_connect.setter
    def before_connect(self, hook: Callable[[], None] | None) -> None:
        self.connection.before_connect = hook

    @property
    def connected(self) -> bool:
        """True while the broker has accepted the connection."""
        return self.connection.connected

    @property
    def reason(self) -> str:
        """Why the link is down (or the last reason it was)."""
        return self.connection.reason

    def will_set(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        """The message the broker publishes if this client vanishes (before the next connect)."""
        self._client.will_set(topic, payload, qos=qos, retain=retain)

    async def connect(self, wait: float = 5.0) -> bool:
        """Start connecting (paho keeps retrying); True when connected within ``wait`` s."""
        self._loop = asyncio.get_running_loop()
        self._up = asyncio.Event()
        if self.connection.connected:
            return True
        self.connection.start()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                await self._up.wait()
        return self.connection.connected

    def subscribe(self, topic_filter: str, handler: Handler, qos: int = 1) -> None:
        """Call ``handler(topic, payload, retained)`` in the asyncio loop for each message."""
        with self._lock:
            entry = self._filters.setdefault(topic_filter, (qos, []))
            entry[1].append(handler)
            new = len(entry[1]) == 1
        if new and self.connection.connected:
            self._client.subscribe(topic_filter, qos)

    def publish(self, topic: str, payload: bytes | str, qos: int = 0,
                retain: bool = False) -> mqtt.MQTTMessageInfo:
        """Queue a message (paho sends it; QoS>0 messages survive a reconnect)."""
        return self._client.publish(topic, payload, qos=qos, retain=retain)

    async def close(self, before: Callable[[], None] | None = None) -> None:
        """Disconnect cleanly (no will); ``before`` runs first, e.g. to publish a death."""
        if not self.connection.started:
            return
        if before is not None and self.connection.connected:
            before()
        await asyncio.to_thread(self.connection.stop)

    # paho callbacks (paho's thread) ---------------------------------------------------
    def _on_connect(self, client: mqtt.Client) -> None:
        with self._lock:
            filters = [(f, qos) for f, (qos, _) in self._filters.items()]
        if filters:
            client.subscribe(filters)
        self._call_soon(self._fire_connected)

    def _on_disconnect(self, reason: str) -> None:
        self._call_soon(lambda: self._fire_disconnected(reason))

    def _on_message(self, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            handlers = [h for f, (_, hs) in self._filters.items()
                        if mqtt.topic_matches_sub(f, msg.topic) for h in hs]
        if handlers:
            topic, payload, retain = msg.topic, bytes(msg.payload), bool(msg.retain)
            self._call_soon(lambda: self._dispatch(handlers, topic, payload, retain))

    # asyncio side ----------------------------------------------------------------------
    def _call_soon(self, fn: Callable[[], None]) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(fn)

    def _dispatch(self, handlers: list[Handler], topic: str, payload: bytes, retain: bool) -> None:
        for h in handlers:
            try:
                h(topic, payload, retain)
            except Exception:  # one bad handler must not starve the others
                log.exception("mqtt %s: handler failed for %s", self.name, topic)

    def _fire_connected(self) -> None:
        if self._up is not None:
            self._up.set()
        for cb in list(self.on_connected):
            try:
                cb()
            except Exception:
                log.exception("mqtt %s: on_connected callback failed", self.name)

    def _fire_disconnected(self, reason: str) -> None:
        for cb in list(self.on_disconnected):
            try:
                cb(reason)
            except Exception:
                log.exception("mqtt %s: on_disconnected callback failed", self.name)


# --------------------------------------------------------------------------- JSON values
def json_path(payload: Any, path: str | None) -> Any:
    """The value at ``path`` (``data.pip``, ``$.data.pip``, ``values[0]``); KeyError if absent."""
    if not path or path in ("$", "$."):
        return payload
    text = path[2:] if path.startswith("$.") else path.lstrip("$")
    value = payload
    for key, index in _PATH_PART.findall(text):
        if key:
            if not isinstance(value, dict) or key not in value:
                raise KeyError(f"no '{key}' in the message at {path}")
            value = value[key]
        else:
            if not isinstance(value, list) or int(index) >= len(value):
                raise KeyError(f"no item [{index}] in the message at {path}")
            value = value[int(index)]
    return value


def parse_timestamp(raw: Any) -> dt.datetime | None:
    """ISO 8601 text, or epoch seconds/milliseconds, as an aware UTC datetime."""
    if isinstance(raw, bool) or raw is None:
        return None
    if isinstance(raw, (int, float)):
        seconds = raw / 1000 if raw > 1e11 else raw
        return dt.datetime.fromtimestamp(seconds, dt.UTC)
    if isinstance(raw, str):
        try:
            ts = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            return None
        return ts if ts.tzinfo else ts.replace(tzinfo=dt.UTC)
    return None


# --------------------------------------------------------------------------- the driver
@dataclass(frozen=True, slots=True)
class _Json:
    topic: str
    path: str | None
    timestamp_path: str | None


class MqttDriver:
    """Values from MQTT topics (implements :class:`engine.scada.types.Driver`).

    Points address JSON values (``topic`` + ``path``) or Sparkplug B metrics (``metric`` +
    ``group``/``edge_node``/``device``), as :class:`metamodel.tags.MqttAddress` does.
    """

    def __init__(self, link: MqttLink, *, qos: int = 1, timeout: float = 5.0,
                 topics: Sequence[str] = (), rebirth_interval: float = 2.0) -> None:
        self.link = link
        self.qos = qos
        self.timeout = timeout
        self._extra_topics = list(topics)
        self._json: dict[str, list[tuple[str, _Json]]] = {}
        self._points: set[str] = set()
        self._cache: dict[str, Reading] = {}
        self._listeners: list[Listener] = []
        self._sparkplug_tags: dict[tuple[str, str, str | None, str], list[str]] = {}
        self._nodes: set[tuple[str, str]] = set()
        self.host = SparkplugHost(self._publish_command, self._on_metric,
                                  rebirth_interval=rebirth_interval)
        link.on_disconnected.append(self._broker_lost)
        link.on_connected.append(self.host.ask_births)

    # -- Driver protocol ----------------------------------------------------------------
    async def connect(self) -> None:
        """Connect to the broker; :class:`DeviceUnavailable` if it does not accept in time."""
        for f in self._extra_topics:
            self.link.subscribe(f, self._on_filtered, self.qos)
        if not await self.link.connect(self.timeout):
            raise DeviceUnavailable(f"mqtt {self.link.name}: {self.link.reason}")

    async def read(self, points: Sequence[PointRef]) -> Mapping[str, Reading]:
        """The latest value of each point (subscribing to new topics on first sight)."""
        self._add(points)
        out: dict[str, Reading] = {}
        for p in points:
            cached = self._cache.get(p.tag)
            if cached is None:
                why = self.link.reason if not self.link.connected else "no message yet"
                cached = Reading(None, Quality.BAD, None, why)
            out[p.tag] = cached
        return out

    async def write(self, point: PointRef, value: Value) -> None:
        """Publish ``value`` to a JSON tag's topic (at its path) or as a Sparkplug DCMD/NCMD."""
        if not self.link.connected:
            raise DeviceUnavailable(f"mqtt {self.link.name}: {self.link.reason}")
        a = point.address
        if getattr(a, "metric", None):
            self.host.command(a.group, a.edge_node, a.device, a.metric, value)
            return
        topic = getattr(a, "topic", None)
        if not topic:
            raise WriteFailed(f"{point.tag}: the address names no topic")
        path = getattr(a, "path", None)
        body: Any = value
        if path:
            for key in reversed([k or i for k, i in _PATH_PART.findall(path.removeprefix("$."))]):
                body = {key: body}
        info = self.link.publish(topic, json.dumps(body), qos=self.qos)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise WriteFailed(f"{point.tag}: publish failed ({mqtt.error_string(info.rc)})")

    async def close(self) -> None:
        """Disconnect from the broker."""
        await self.link.close()

    def add_listener(self, callback: Listener) -> None:
        """Call ``callback(tag, reading)`` for every value that arrives."""
        self._listeners.append(callback)

    # -- internals ----------------------------------------------------------------------
    def _add(self, points: Iterable[PointRef]) -> None:
        for p in points:
            if p.tag in self._points:
                continue
            self._points.add(p.tag)
            a = p.address
            if getattr(a, "metric", None):
                key = (a.group, a.edge_node, a.device, a.metric)
                self._sparkplug_tags.setdefault(key, []).append(p.tag)
                if (a.group, a.edge_node) not in self._nodes:
                    self._nodes.add((a.group, a.edge_node))
                    self.link.subscribe(node_filter(a.group, a.edge_node), self._on_sparkplug,
                                        self.qos)
                    self.host.watch(a.group, a.edge_node)
                    if self.link.connected:
                        self.host.ask_births()
                continue
            spec = _Json(a.topic, getattr(a, "path", None), getattr(a, "timestamp_path", None))
            entries = self._json.setdefault(spec.topic, [])
            entries.append((p.tag, spec))
            covered = any(mqtt.topic_matches_sub(f, spec.topic) for f in self._extra_topics)
            if len(entries) == 1 and not covered:
                self.link.subscribe(spec.topic, self._on_json, self.qos)

    def _store(self, tag: str, reading: Reading) -> None:
        self._cache[tag] = reading
        for cb in self._listeners:
            try:
                cb(tag, reading)
            except Exception:
                log.exception("mqtt %s: listener failed for %s", self.link.name, tag)

    def _on_json(self, topic: str, payload: bytes, _retained: bool) -> None:
        entries = self._json.get(topic, [])
        try:
            doc = json.loads(payload) if payload else None
        except ValueError:
            for tag, _ in entries:
                self._store(tag, Reading(None, Quality.BAD, None,
                                         f"the message on {topic} is not JSON"))
            return
        now = dt.datetime.now(dt.UTC)
        for tag, spec in entries:
            try:
                value = json_path(doc, spec.path)
            except KeyError as exc:
                self._store(tag, Reading(None, Quality.BAD, now, exc.args[0]))
                continue
            if isinstance(value, (dict, list)):
                self._store(tag, Reading(None, Quality.BAD, now,
                                         f"{spec.path or 'the payload'} is not a single value"))
                continue
            ts = None
            if spec.timestamp_path:
                with contextlib.suppress(KeyError):
                    ts = parse_timestamp(json_path(doc, spec.timestamp_path))
            self._store(tag, Reading(value, Quality.GOOD, ts or now))

    def _on_filtered(self, topic: str, payload: bytes, retained: bool) -> None:
        """A message on one of the device's ``topics:`` filters."""
        if topic in self._json:
            self._on_json(topic, payload, retained)

    def _on_sparkplug(self, topic: str, payload: bytes, _retained: bool) -> None:
        self.host.handle(topic, payload)

    def _on_metric(self, group: str, node: str, device: str | None, metric: str,
                   reading: Reading) -> None:
        for tag in self._sparkplug_tags.get((group, node, device, metric), ()):
            self._store(tag, reading)

    def _publish_command(self, topic: str, payload: bytes) -> None:
        self.link.publish(topic, payload, qos=0)

    def _broker_lost(self, reason: str) -> None:
        for tag in self._points:
            self._store(tag, Reading(None, Quality.BAD, None, reason))


# --------------------------------------------------------------------------- upstream
class MqttPublisher:
    """Publishes tag changes as retained JSON: ``{"tag","value","quality","ts","reason"}``.

    ``topic`` is a template with ``{tag}`` (the path) and ``{tag_path}`` (dots as slashes),
    e.g. ``campo/{site}/tags/{tag_path}`` with ``site`` given in ``fields``.
    """

    def __init__(self, link: MqttLink, topic: str = "campo/tags/{tag}", *, qos: int = 1,
                 retain: bool = True, fields: Mapping[str, str] | None = None) -> None:
        self.link = link
        self.topic = topic
        self.qos = qos
        self.retain = retain
        self.fields = dict(fields or {})
        self.topic_for("x.y")  # a bad template fails here, not on the first change

    def topic_for(self, tag: str) -> str:
        """The topic a tag's values go to."""
        try:
            return self.topic.format(tag=tag, tag_path=tag.replace(".", "/"), **self.fields)
        except (KeyError, IndexError) as exc:
            raise ValueError(f"topic template {self.topic!r} names an unknown field {exc}; "
                             "use {tag}, {tag_path} or a key of fields") from None

    def publish(self, values: Iterable[TagValue]) -> int:
        """Publish each value (a pipeline subscriber callback); returns how many were queued."""
        n = 0
        for tv in values:
            body = {"tag": tv.tag, "value": tv.value, "quality": tv.quality.name.lower(),
                    "ts": tv.ts.isoformat(), "reason": tv.reason}
            self.link.publish(self.topic_for(tv.tag), json.dumps(body, default=str),
                              qos=self.qos, retain=self.retain)
            n += 1
        return n


# --------------------------------------------------------------------------- registry
def create(device: Device, environ: Mapping[str, str] = os.environ) -> MqttDriver:
    """A driver for a tag-model device of type ``mqtt`` (password from ``password_env``);
    :class:`~engine.scada.registry.NoDriver` when its broker URL cannot be used."""
    from metamodel.tags.spec import MqttSpec

    spec = device.spec
    if not isinstance(spec, MqttSpec):
        raise TypeError(f"device {device.qualname} is {device.type}, not mqtt")
    first, largest = device.reconnect_delays
    password = environ.get(spec.password_env) if spec.password_env else None
    try:
        link = MqttLink(spec.broker, client_id=spec.client_id, username=spec.username,
                        password=password, reconnect_delay=first,
                        reconnect_delay_max=largest, name=device.qualname)
    except ValueError as exc:  # the URL (engine.mqtt): the device's tags stay BAD, saying why
        raise NoDriver(f"device {device.qualname}: {exc}") from None
    return MqttDriver(link, qos=spec.qos, timeout=max(device.timeout, 2.0), topics=spec.topics)


def point(tag: Tag) -> PointRef:
    """The point of a tag: its :class:`metamodel.tags.MqttAddress` as it is."""
    return PointRef(tag.path, tag.address)
