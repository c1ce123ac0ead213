"""The MQTT driver and upstream publisher against the real Mosquitto."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from engine.scada.drivers.mqtt import (
    MqttDriver,
    MqttLink,
    MqttPublisher,
    create,
    json_path,
    parse_timestamp,
    point,
)
from engine.scada.runtime import Runtime
from engine.scada.types import DeviceUnavailable, PointRef, Quality, Reading, TagValue
from metamodel.tags import MqttAddress, load_tags

pytestmark = pytest.mark.integration


class Probe:
    """A plain paho client for the test's side of the broker."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("mqtt://").split(":")
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=f"probe-{uuid.uuid4().hex[:8]}")
        self.messages: list[mqtt.MQTTMessage] = []
        self._lock = threading.Lock()
        self.client.on_message = lambda c, u, m: self._add(m)
        self.client.connect(host, int(port))
        self.client.loop_start()

    def _add(self, m: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append(m)

    def on(self, topic: str) -> list[mqtt.MQTTMessage]:
        with self._lock:
            return [m for m in self.messages if mqtt.topic_matches_sub(topic, m.topic)]

    def subscribe(self, topic: str) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *a: done.set()
        self.client.subscribe(topic, 1)
        assert done.wait(5)

    def publish(self, topic: str, payload: bytes | str, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def probe(mqtt_url: str) -> Iterator[Probe]:
    p = Probe(mqtt_url)
    yield p
    p.close()


@pytest.fixture
def prefix() -> str:
    return f"campo-test/{uuid.uuid4().hex[:10]}"


async def until(check: Callable[[], bool], within: float = 10.0) -> None:
    end = time.monotonic() + within
    while not check():
        if time.monotonic() > end:
            pytest.fail(f"condition not met within {within} s")
        await asyncio.sleep(0.02)


def drop_connection(link: MqttLink) -> None:
    """Cut the link's TCP connection under paho (no DISCONNECT: the broker sends the will)."""
    sock = link._client.socket()
    assert sock is not None
    sock.shutdown(socket.SHUT_RDWR)


async def test_json_tags_from_retained_and_live_messages(mqtt_url: str, probe: Probe,
                                                         prefix: str) -> None:
    probe.publish(f"{prefix}/w1", json.dumps(
        {"data": {"pip": 812.5, "levels": [1.5, 2.5]}, "ts": "2026-11-30T12:00:00Z"}), retain=True)
    drv = MqttDriver(MqttLink(mqtt_url), timeout=5)
    seen: list[tuple[str, Reading]] = []
    drv.add_listener(lambda t, r: seen.append((t, r)))
    pts = [PointRef("pip", MqttAddress(topic=f"{prefix}/w1", path="$.data.pip",
                                       timestamp_path="ts")),
           PointRef("lvl", MqttAddress(topic=f"{prefix}/w1", path="data.levels[1]")),
           PointRef("missing", MqttAddress(topic=f"{prefix}/w1", path="data.thp")),
           PointRef("whole", MqttAddress(topic=f"{prefix}/raw")),
           PointRef("obj", MqttAddress(topic=f"{prefix}/w1", path="data"))]
    await drv.connect()
    try:
        first = await drv.read(pts)
        assert first["whole"] == Reading(None, Quality.BAD, None, "no message yet")
        await until(lambda: {t for t, _ in seen} >= {"pip", "lvl", "missing", "obj"})
        got = await drv.read(pts)
        assert got["pip"] == Reading(812.5, Quality.GOOD,
                                     dt.datetime(2026, 11, 30, 12, tzinfo=dt.UTC))
        assert got["lvl"].value == 2.5 and got["lvl"].quality is Quality.GOOD
        assert got["missing"].quality is Quality.BAD
        assert got["missing"].reason == "no 'thp' in the message at data.thp"
        assert got["obj"].reason == "data is not a single value"
        probe.publish(f"{prefix}/raw", "42")
        probe.publish(f"{prefix}/w1", "not json {")
        await until(lambda: drv._cache.get("whole") is not None
                    and drv._cache["pip"].reason is not None)
        assert (await drv.read(pts))["whole"].value == 42
        assert drv._cache["pip"] == Reading(None, Quality.BAD, None,
                                            f"the message on {prefix}/w1 is not JSON")
    finally:
        await drv.close()
        probe.publish(f"{prefix}/w1", b"", retain=True)  # clear the retained message


async def test_write_publishes_json_at_the_path(mqtt_url: str, probe: Probe, prefix: str) -> None:
    probe.subscribe(f"{prefix}/cmd")
    drv = MqttDriver(MqttLink(mqtt_url))
    await drv.connect()
    try:
        await drv.write(PointRef("sp", MqttAddress(topic=f"{prefix}/cmd", path="$.vsd.sp")), 52.5)
        await until(lambda: len(probe.on(f"{prefix}/cmd")) == 1)
        assert json.loads(probe.on(f"{prefix}/cmd")[0].payload) == {"vsd": {"sp": 52.5}}
    finally:
        await drv.close()
    with pytest.raises(DeviceUnavailable, match=r"mqtt 127.0.0.1:\d+: closed"):
        await drv.write(PointRef("sp", MqttAddress(topic=f"{prefix}/cmd")), 1)


async def test_reconnect_resubscribes_and_marks_bad_meanwhile(mqtt_url: str, probe: Probe,
                                                              prefix: str) -> None:
    link = MqttLink(mqtt_url, reconnect_delay=0.5, reconnect_delay_max=1)
    drv = MqttDriver(link)
    pt = PointRef("v", MqttAddress(topic=f"{prefix}/v", path="v"))
    seen: list[Reading] = []
    drv.add_listener(lambda t, r: seen.append(r))
    await drv.connect()
    try:
        await drv.read([pt])
        await asyncio.sleep(0.2)
        probe.publish(f"{prefix}/v", '{"v": 1}')
        await until(lambda: bool(seen) and seen[-1].value == 1)
        drop_connection(link)
        await until(lambda: seen[-1].quality is Quality.BAD)
        assert "connection lost" in (seen[-1].reason or "")
        await until(lambda: link.connected)
        await asyncio.sleep(0.2)
        probe.publish(f"{prefix}/v", '{"v": 2}')  # arrives only if we subscribed again
        await until(lambda: seen[-1].value == 2)
    finally:
        await drv.close()


async def test_unreachable_broker_is_device_unavailable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    drv = MqttDriver(MqttLink(f"mqtt://127.0.0.1:{port}"), timeout=0.5)
    with pytest.raises(DeviceUnavailable,
                       match=f"cannot reach the MQTT broker at 127.0.0.1:{port}"):
        await drv.connect()
    reading = (await drv.read([PointRef("x", MqttAddress(topic="a/b"))]))["x"]
    assert reading.quality is Quality.BAD
    await drv.close()


async def test_publisher_retains_the_last_value_per_tag(mqtt_url: str, probe: Probe,
                                                        prefix: str) -> None:
    link = MqttLink(mqtt_url)
    pub = MqttPublisher(link, f"{prefix}/{{site}}/{{tag_path}}", fields={"site": "pad7"})
    assert await link.connect()
    ts = dt.datetime(2026, 11, 30, 12, tzinfo=dt.UTC)
    try:
        n = pub.publish([TagValue("w1.pip", 812.5, Quality.GOOD, ts),
                         TagValue("w1.pip", 813.0, Quality.GOOD, ts),
                         TagValue("w1.run", None, Quality.BAD, ts, reason="comms lost")])
        assert n == 3
        await asyncio.sleep(0.3)
        late = Probe(mqtt_url)  # subscribes after the fact: retained values only
        try:
            late.subscribe(f"{prefix}/#")
            await until(lambda: len(late.on(f"{prefix}/#")) == 2)
            got = {m.topic: json.loads(m.payload) for m in late.on(f"{prefix}/#")}
        finally:
            late.close()
        assert got[f"{prefix}/pad7/w1/pip"] == {"tag": "w1.pip", "value": 813.0,
                                                "quality": "good", "ts": ts.isoformat(),
                                                "reason": None}
        assert got[f"{prefix}/pad7/w1/run"]["quality"] == "bad"
        assert got[f"{prefix}/pad7/w1/run"]["reason"] == "comms lost"
    finally:
        for topic in ("pad7/w1/pip", "pad7/w1/run"):
            link.publish(f"{prefix}/{topic}", b"", qos=1, retain=True)
        await asyncio.sleep(0.1)
        await link.close()
    with pytest.raises(ValueError, match="names an unknown field 'site'"):
        MqttPublisher(link, "x/{site}/{tag}")


async def test_tag_model_device_through_create_and_point(mqtt_url: str, probe: Probe,
                                                         prefix: str, project: Any) -> None:
    root: Path = project({
        "tags/scan_classes.yaml": "scan_classes:\n  fast: {period: 1s}\n",
        "tags/sites/t.yaml": (
            "site: t\n"
            "devices:\n"
            f"  broker: {{type: mqtt, broker: '{mqtt_url}', topics: ['{prefix}/#']}}\n"
            "tags:\n"
            f"  sep.pressure: {{device: broker, topic: {prefix}/sep1, path: data.p,\n"
            "                 scan_class: fast}\n"),
    })
    model = load_tags(root)
    device = model.devices["t.broker"]
    drv = create(device, environ={})
    pts = [point(t) for t in model.tags_of("t.broker")]
    await drv.connect()
    try:
        await drv.read(pts)
        # the subscription may still be on its way to the broker: publish until it lands
        end = time.monotonic() + 20
        while drv._cache.get("t.sep.pressure") is None and time.monotonic() < end:
            probe.publish(f"{prefix}/sep1", '{"data": {"p": 101.3}}')
            await asyncio.sleep(0.5)
        await until(lambda: drv._cache.get("t.sep.pressure") is not None)
        assert (await drv.read(pts))["t.sep.pressure"].value == 101.3
    finally:
        await drv.close()


async def test_a_device_with_an_unusable_broker_url_leaves_its_tags_bad(project: Any) -> None:
    root: Path = project({
        "tags/scan_classes.yaml": "scan_classes:\n  fast: {period: 1s}\n",
        "tags/sites/t.yaml": (
            "site: t\n"
            "devices:\n"
            "  broker: {type: mqtt, broker: 'mqtt://127.0.0.1:1883?qos=1'}\n"
            "tags:\n"
            "  sep.pressure: {device: broker, topic: t/sep1, scan_class: fast}\n"),
    })
    runtime = Runtime(load_tags(root))
    await runtime.start()
    try:
        why = ("device t.broker: broker URL 'mqtt://127.0.0.1:1883?qos=1': unknown parameter "
               "'qos' (expected one of ca_file, insecure, client_id)")
        assert runtime.unavailable == {"t.broker": why}
        tv = runtime.get("t.sep.pressure")
        assert tv is not None and tv.quality is Quality.BAD and tv.reason == why
    finally:
        await runtime.stop()


def test_json_path_and_timestamps() -> None:
    doc = {"a": {"b": [10, {"c": True}]}}
    assert json_path(doc, "$.a.b[1].c") is True and json_path(doc, "a.b[0]") == 10
    assert json_path(7, None) == 7 and json_path(doc, "$") == doc
    with pytest.raises(KeyError, match=r"no item \[5\]"):
        json_path(doc, "a.b[5]")
    assert parse_timestamp(1_764_504_000) == dt.datetime(2025, 11, 30, 12, tzinfo=dt.UTC)
    assert parse_timestamp(1_764_504_000_000) == dt.datetime(2025, 11, 30, 12, tzinfo=dt.UTC)
    assert parse_timestamp("2026-11-30T12:00:00") == dt.datetime(2026, 11, 30, 12, tzinfo=dt.UTC)
    assert parse_timestamp("yesterday") is None and parse_timestamp(True) is None
    with pytest.raises(ValueError, match="mqtt://host:1883"):
        MqttLink("http://x")
