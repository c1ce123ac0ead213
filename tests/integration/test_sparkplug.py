"""Sparkplug B on the real Mosquitto: the site as an edge node, and the driver as a host."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import paho.mqtt.client as mqtt
import pytest

from engine.scada import sparkplug_pb as pb
from engine.scada.drivers.mqtt import MqttDriver, MqttLink
from engine.scada.sparkplug import REBIRTH, SparkplugEdgeNode, alias_for
from engine.scada.types import PointRef, Quality, TagValue
from metamodel.tags import MqttAddress

pytestmark = pytest.mark.integration
D = pb.DataType
TS = dt.datetime(2026, 11, 30, 12, tzinfo=dt.UTC)


class Probe:
    """A plain paho client that records (topic, decoded payload) and can publish raw bytes."""

    def __init__(self, url: str, topic: str) -> None:
        host, port = url.removeprefix("mqtt://").split(":")
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=f"probe-{uuid.uuid4().hex[:8]}")
        self.got: list[tuple[str, pb.Payload]] = []
        self._lock = threading.Lock()
        subscribed = threading.Event()
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.connect(host, int(port))
        self.client.loop_start()
        self.client.subscribe(topic, 1)
        assert subscribed.wait(5)

    def _on_message(self, _c: object, _u: object, m: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.got.append((m.topic, pb.decode_payload(m.payload)))

    def kinds(self) -> list[str]:
        with self._lock:
            return [t.split("/")[2] + ("/" + t.split("/")[4] if t.count("/") == 4 else "")
                    for t, _ in self.got]

    def last(self, kind: str) -> pb.Payload:
        with self._lock:
            return [p for t, p in self.got if t.split("/")[2] == kind][-1]

    def count(self, kind: str) -> int:
        with self._lock:
            return sum(1 for t, _ in self.got if t.split("/")[2] == kind)

    def send(self, topic: str, payload: pb.Payload | bytes) -> None:
        data = payload if isinstance(payload, bytes) else pb.encode_payload(payload)
        self.client.publish(topic, data, qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def group() -> str:
    return f"campo-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def probe(mqtt_url: str, group: str) -> Iterator[Probe]:
    p = Probe(mqtt_url, f"spBv1.0/{group}/#")
    yield p
    p.close()


async def until(check: Callable[[], bool], within: float = 10.0) -> None:
    end = time.monotonic() + within
    while not check():
        if time.monotonic() > end:
            pytest.fail(f"condition not met within {within} s")
        await asyncio.sleep(0.02)


TAGS = {"pad7.w1.pip": D.Double, "pad7.w1.run": D.Boolean, "pad7.w2.pip": D.Double,
        "site_ok": D.Boolean}


def values(pip: float = 812.5) -> list[TagValue]:
    return [TagValue("pad7.w1.pip", pip, Quality.GOOD, TS),
            TagValue("pad7.w1.run", True, Quality.GOOD, TS),
            TagValue("pad7.w2.pip", 640.0, Quality.GOOD, TS),
            TagValue("site_ok", True, Quality.GOOD, TS)]


async def test_edge_node_births_data_rebirth_and_death(mqtt_url: str, group: str,
                                                       probe: Probe) -> None:
    edge = SparkplugEdgeNode(MqttLink(mqtt_url), group, "site1", TAGS)
    edge.publish(values())  # recorded while offline, published in the births
    assert await edge.start()
    try:
        await until(lambda: probe.kinds()[:3] == ["NBIRTH", "DBIRTH/pad7.w1", "DBIRTH/pad7.w2"])
        nb = probe.last("NBIRTH")
        assert nb.seq == 0
        by_name = {m.name: m for m in nb.metrics}
        assert by_name["bdSeq"].value == 0 and by_name["bdSeq"].datatype == D.Int64
        assert by_name[REBIRTH].value is False
        assert by_name["site_ok"].alias == alias_for("site_ok") and by_name["site_ok"].value
        db = [p for t, p in probe.got if t.endswith("DBIRTH/site1/pad7.w1")][0]
        assert db.seq == 1
        pip = {m.name: m for m in db.metrics}["pip"]
        assert (pip.alias, pip.datatype, pip.value) == (alias_for("pad7.w1.pip"), D.Double, 812.5)
        # only what changed, by alias, with the next seq
        assert edge.publish(values(813.0)) == 1
        await until(lambda: probe.count("DDATA") == 1)
        dd = probe.last("DDATA")
        assert dd.seq == 3 and len(dd.metrics) == 1
        assert (dd.metrics[0].name, dd.metrics[0].alias, dd.metrics[0].value) == (
            None, alias_for("pad7.w1.pip"), 813.0)
        edge.publish([TagValue("pad7.w1.pip", None, Quality.BAD, TS, reason="comms")])
        await until(lambda: probe.count("DDATA") == 2)
        bad = probe.last("DDATA").metrics[0]
        assert bad.is_null and bad.properties["Quality"].value == 0
        # a host asks for a rebirth: NBIRTH (seq 0, same bdSeq) and the DBIRTHs again
        probe.send(f"spBv1.0/{group}/NCMD/site1", pb.Payload(timestamp=1, metrics=[
            pb.Metric(name=REBIRTH, datatype=D.Boolean, value=True)]))
        await until(lambda: probe.count("NBIRTH") == 2 and probe.count("DBIRTH") == 4)
        assert probe.last("NBIRTH").seq == 0 and edge.births == 2
        # seq wraps 255 -> 0
        for i in range(260):
            edge.publish([TagValue("pad7.w2.pip", float(i), Quality.GOOD, TS)])
        await until(lambda: probe.count("DDATA") == 262)
        seqs = [p.seq for t, p in probe.got if "/DDATA/" in t][-260:]
        assert seqs[0] == 3 and 255 in seqs and seqs[seqs.index(255) + 1] == 0
    finally:
        await edge.stop()
    await until(lambda: probe.count("NDEATH") == 1)
    assert {m.name: m.value for m in probe.last("NDEATH").metrics} == {"bdSeq": 0}


async def test_ndeath_will_on_a_lost_connection_and_new_bdseq(mqtt_url: str, group: str,
                                                              probe: Probe) -> None:
    link = MqttLink(mqtt_url, keepalive=5, reconnect_delay=0.5, reconnect_delay_max=1)
    edge = SparkplugEdgeNode(link, group, "site2", {"a.x": D.Double})
    assert await edge.start()
    try:
        await until(lambda: probe.count("NBIRTH") == 1)
        sock = link._client.socket()
        assert sock is not None
        sock.shutdown(socket.SHUT_RDWR)  # no DISCONNECT: the broker publishes the will
        await until(lambda: probe.count("NDEATH") == 1 and probe.count("NBIRTH") == 2)
        assert {m.name: m.value for m in probe.last("NDEATH").metrics} == {"bdSeq": 0}
        births = [p for t, p in probe.got if "/NBIRTH/" in t]
        assert [{m.name: m.value for m in b.metrics}["bdSeq"] for b in births] == [0, 1]
    finally:
        await edge.stop()


async def test_driver_follows_our_edge_node(mqtt_url: str, group: str, probe: Probe) -> None:
    edge = SparkplugEdgeNode(MqttLink(mqtt_url), group, "site3", TAGS)
    edge.publish(values())
    assert await edge.start()
    await until(lambda: probe.count("DBIRTH") == 2)
    drv = MqttDriver(MqttLink(mqtt_url))
    pts = [PointRef("pip", MqttAddress(metric="pip", group=group, edge_node="site3",
                                       device="pad7.w1")),
           PointRef("ok", MqttAddress(metric="site_ok", group=group, edge_node="site3"))]
    await drv.connect()
    try:
        await drv.read(pts)  # the births went out before we listened: we ask for a rebirth
        await until(lambda: edge.births == 2 and drv._cache.get("pip") is not None)
        got = await drv.read(pts)
        assert got["pip"].value == 812.5 and got["pip"].quality is Quality.GOOD
        assert got["pip"].source_ts == TS and got["ok"].value is True
        edge.publish(values(799.0))
        await until(lambda: drv._cache["pip"].value == 799.0)
        await edge.stop()  # NDEATH: the host marks the node's metrics BAD
        await until(lambda: drv._cache["pip"].quality is Quality.BAD)
        assert drv._cache["pip"].reason == "edge node offline (NDEATH)"
        assert drv._cache["ok"].quality is Quality.BAD
    finally:
        await drv.close()


async def test_host_sequence_gap_unknown_alias_and_deaths(mqtt_url: str, group: str,
                                                          probe: Probe) -> None:
    drv = MqttDriver(MqttLink(mqtt_url), rebirth_interval=0.0)
    base = f"spBv1.0/{group}"
    pts = [PointRef("temp", MqttAddress(metric="temp", group=group, edge_node="rtu",
                                        device="d1")),
           PointRef("up", MqttAddress(metric="uptime", group=group, edge_node="rtu"))]
    await drv.connect()
    try:
        await drv.read(pts)
        await until(lambda: probe.count("NCMD") == 1)  # no birth seen yet: ask for one
        ncmd = probe.last("NCMD").metrics[0]
        assert (ncmd.name, ncmd.value) == (REBIRTH, True)
        probe.send(f"{base}/NBIRTH/rtu", pb.Payload(timestamp=1, seq=0, metrics=[
            pb.Metric(name="bdSeq", datatype=D.Int64, value=5),
            pb.Metric(name="uptime", alias=1, datatype=D.Int64, value=100)]))
        probe.send(f"{base}/DBIRTH/rtu/d1", pb.Payload(timestamp=2, seq=1, metrics=[
            pb.Metric(name="temp", alias=7, datatype=D.Int32, value=20)]))
        # DDATA by alias without datatype, typed from the birth (signed Int32); by hand:
        # timestamp 3 | metric {alias 7, int_value 0xFFFFFFFB} | seq 2
        probe.send(f"{base}/DDATA/rtu/d1", bytes.fromhex("0803" "1208" "1007" "50fbffffff0f"
                                                         "1802"))
        await until(lambda: drv._cache.get("temp") is not None
                    and drv._cache["temp"].value == -5)
        assert drv._cache["up"].value == 100 and probe.count("NCMD") == 1
        # a gap (seq 5 after 2): values still taken, rebirth requested
        probe.send(f"{base}/DDATA/rtu/d1", pb.Payload(timestamp=4, seq=5, metrics=[
            pb.Metric(alias=7, datatype=D.Int32, value=21)]))
        await until(lambda: probe.count("NCMD") == 2)
        assert drv._cache["temp"].value == 21
        # an alias no birth declared
        probe.send(f"{base}/DDATA/rtu/d1", pb.Payload(timestamp=5, seq=6, metrics=[
            pb.Metric(alias=99, datatype=D.Int32, value=1)]))
        await until(lambda: probe.count("NCMD") == 3)
        # quality travels as a metric property
        probe.send(f"{base}/DDATA/rtu/d1", pb.Payload(timestamp=6, seq=7, metrics=[
            pb.Metric(alias=7, datatype=D.Int32, value=0,
                      properties={"Quality": pb.PropertyValue(D.Int32, 0)})]))
        await until(lambda: drv._cache["temp"].quality is Quality.BAD)
        assert drv._cache["temp"].reason == "quality 0 at the edge"
        probe.send(f"{base}/DDEATH/rtu/d1", pb.Payload(timestamp=7, seq=8))
        await until(lambda: drv._cache["temp"].reason == "device offline (DDEATH)")
        assert drv._cache["up"].quality is Quality.GOOD
        # an NDEATH of an older session (bdSeq 4) is ignored; the current one is not
        probe.send(f"{base}/NDEATH/rtu", pb.Payload(timestamp=8, metrics=[
            pb.Metric(name="bdSeq", datatype=D.Int64, value=4)]))
        probe.send(f"{base}/NDATA/rtu", pb.Payload(timestamp=9, seq=9, metrics=[
            pb.Metric(alias=1, datatype=D.Int64, value=101)]))
        await until(lambda: drv._cache["up"].value == 101)
        probe.send(f"{base}/NDEATH/rtu", pb.Payload(timestamp=10, metrics=[
            pb.Metric(name="bdSeq", datatype=D.Int64, value=5)]))
        await until(lambda: drv._cache["up"].quality is Quality.BAD)
        assert drv._cache["up"].reason == "edge node offline (NDEATH)"
        # data after the death: not believed, a rebirth is asked for
        probe.send(f"{base}/NDATA/rtu", pb.Payload(timestamp=11, seq=10, metrics=[
            pb.Metric(alias=1, datatype=D.Int64, value=102)]))
        await until(lambda: probe.count("NCMD") == 4)
        assert drv._cache["up"].quality is Quality.BAD
        assert drv.host.rebirths[(group, "rtu")] == 4
    finally:
        await drv.close()


def test_edge_node_refuses_bad_ids(mqtt_url: str) -> None:
    with pytest.raises(ValueError, match="edge node id 'a/b' must be non-empty"):
        SparkplugEdgeNode(MqttLink(mqtt_url), "g", "a/b", {})
