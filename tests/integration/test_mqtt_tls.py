"""``mqtts://`` on a real Mosquitto that speaks only TLS (certificates made by the fixture).

The bus carries values and a tag write over TLS; the URL's scheme picks TLS for the bus, the
MQTT driver and the health check alike (``mqtt://`` to the same port fails for all three),
the broker's certificate is verified against the CA file, and the credentials of the URL or
of the settings are sent.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from support.tls_broker import PASSWORD, USER, TlsBroker, tls_broker

from engine.api.health import Health
from engine.bus import LiveValue, WriteOutcome
from engine.bus.mqtt import MqttBus
from engine.db import create_engine_for
from engine.mqtt import Broker, probe
from engine.scada.drivers.mqtt import MqttDriver, MqttLink
from engine.scada.types import DeviceUnavailable, PointRef, Quality
from engine.settings import Settings
from metamodel.tags import MqttAddress

pytestmark = pytest.mark.integration

NOW = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsBroker]:
    yield from tls_broker(tmp_path_factory.mktemp("tls-broker"))


def _wait(cond: Callable[[], bool], timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


def test_the_bus_carries_values_and_a_write_over_tls(broker: TlsBroker) -> None:
    prefix = f"campo-tls/{uuid.uuid4().hex[:8]}"
    scada = MqttBus(broker.url(), prefix=prefix)
    web = MqttBus(broker.url(), prefix=prefix)
    try:
        assert scada.connection.broker.tls and scada.connection.broker.port == broker.port
        assert scada.wait_connected() and web.wait_connected(), scada.connection.reason
        asked: list[tuple[str, Any, Any]] = []

        def handler(tag: str, value: Any, meta: dict[str, Any]) -> WriteOutcome:
            asked.append((tag, value, meta.get("user")))
            return WriteOutcome(True, round(value, 1))

        scada.serve_writes(handler)
        scada.publish([LiveValue("pad1.w1.pip", 812.5, "good", NOW),
                       LiveValue("pad1.w1.run", True, "good", NOW)])
        assert _wait(lambda: len(web.snapshot(["pad1.**"])) == 2)
        got = {v.tag: v for v in web.snapshot(["pad1.**"])}
        assert got["pad1.w1.pip"].value == 812.5 and got["pad1.w1.pip"].ts == NOW
        assert got["pad1.w1.run"].value is True
        time.sleep(0.2)  # the runtime's subscription to write requests is in place
        out = web.request_write("pad1.w1.sp", 52.55, {"user": "op1"})
        assert out == WriteOutcome(True, 52.5)  # the runtime's answer, back over TLS
        assert asked == [("pad1.w1.sp", 52.55, "op1")]
    finally:
        for bus in (scada, web):
            for v in bus.snapshot(["pad1.**"]):  # drop the retained test values
                bus._client.publish(f"{prefix}/v/{v.tag}", b"", retain=True)
        scada.close()
        web.close()


def test_the_scheme_picks_tls_for_bus_driver_and_health(broker: TlsBroker,
                                                        tmp_path: Path) -> None:
    clear = broker.url("mqtt", query="-")  # the same host, port and credentials, no TLS
    tls = broker.url()
    assert Broker.from_settings(Settings(mqtt_url="mqtts://h")).port == 8883
    assert Broker.from_settings(Settings(mqtt_url="mqtt://h")).port == 1883
    db = create_engine_for(f"sqlite:///{tmp_path}/h.db")

    async def driver_connects(url: str) -> bool:
        drv = MqttDriver(MqttLink(url), timeout=2)
        try:
            await drv.connect()
            return True
        except DeviceUnavailable:
            return False
        finally:
            await drv.close()

    # bus
    for url, expected in ((tls, True), (clear, False)):
        bus = MqttBus(url, prefix="campo-tls/scheme")
        try:
            assert bus.wait_connected(2.5) is expected, (url, bus.connection.reason)
        finally:
            bus.close()
    # driver
    assert asyncio.run(driver_connects(tls)) is True
    assert asyncio.run(driver_connects(clear)) is False
    # health, from a URL and from the settings (CA file and credentials as settings)
    assert Health(db, tls).mqtt() == "connected"
    assert Health(db, clear, timeout=1.0).mqtt() == "disconnected"
    settings = Settings(mqtt_url=f"mqtts://127.0.0.1:{broker.port}",
                        mqtt_ca_file=broker.ca_file, mqtt_username=USER,
                        mqtt_password=SecretStr(PASSWORD))
    assert Health.from_settings(db, settings).mqtt() == "connected"
    assert Broker.from_settings(settings).password == PASSWORD


def test_the_certificate_is_verified_and_credentials_are_sent(broker: TlsBroker) -> None:
    assert probe(broker.url()) == (True, "connected")
    up, why = probe(broker.url(query=f"ca_file={broker.other_ca_file}"))
    assert not up and "CERTIFICATE_VERIFY_FAILED" in why
    # insecure: encrypted, not verified (a lab broker with a self-signed certificate)
    assert probe(broker.url(query="insecure=true")) == (True, "connected")
    up, why = probe(broker.url(credentials=False))
    assert not up and why == (f"the broker mqtts://127.0.0.1:{broker.port} refused the "
                              "connection: Not authorized")


async def test_the_driver_reads_and_writes_json_over_tls(broker: TlsBroker) -> None:
    topic = f"campo-tls/{uuid.uuid4().hex[:8]}"
    drv = MqttDriver(MqttLink(broker.url()), timeout=5)
    peer = MqttLink(broker.url())
    heard: list[bytes] = []
    peer.subscribe(f"{topic}/cmd", lambda _t, payload, _r: heard.append(payload))
    pip = PointRef("pip", MqttAddress(topic=f"{topic}/w1", path="data.pip"))
    try:
        await drv.connect()
        assert await peer.connect()
        await drv.read([pip])  # subscribes to the tag's topic
        await asyncio.sleep(0.2)
        peer.publish(f"{topic}/w1", json.dumps({"data": {"pip": 801.5}}), qos=1)
        end = time.monotonic() + 5
        while (await drv.read([pip]))["pip"].quality is not Quality.GOOD:
            assert time.monotonic() < end, "no value over TLS within 5 s"
            await asyncio.sleep(0.02)
        assert (await drv.read([pip]))["pip"].value == 801.5
        await drv.write(PointRef("sp", MqttAddress(topic=f"{topic}/cmd", path="vsd.sp")), 52.5)
        end = time.monotonic() + 5
        while not heard:
            assert time.monotonic() < end, "the write did not arrive within 5 s"
            await asyncio.sleep(0.02)
        assert json.loads(heard[0]) == {"vsd": {"sp": 52.5}}
    finally:
        await drv.close()
        await peer.close()


async def test_upstream_json_and_sparkplug_over_tls_from_the_settings(
        broker: TlsBroker, project: Any, tmp_path: Path) -> None:
    from engine.scada.types import TagValue
    from engine.wiring.edge import upstream_sinks
    from metamodel.tags import load_tags

    run = uuid.uuid4().hex[:8]
    tags = load_tags(project({
        "tags/scan_classes.yaml": "scan_classes:\n  fast: {period: 1s}\n",
        "tags/sites/pad7.yaml": (
            "site: pad7\n"
            "devices:\n"
            "  gw: {type: mqtt, broker: 'mqtt://127.0.0.1:1'}\n"
            "tags:\n"
            "  w1.pip: {device: gw, topic: x/pip, type: float64, scan_class: fast}\n"),
    }))
    # the CA file and the credentials as settings, not in the URL
    settings = Settings(mqtt_url=f"mqtts://127.0.0.1:{broker.port}", mqtt_ca_file=broker.ca_file,
                        mqtt_username=USER, mqtt_password=SecretStr(PASSWORD),
                        upstream_topic=f"campo-tls/{run}/{{site}}/{{tag_path}}",
                        sparkplug_group=f"g{run}", sparkplug_node="pad7", data_dir=tmp_path)
    heard: dict[str, bytes] = {}
    watcher = MqttLink(Broker.from_settings(settings))
    watcher.subscribe(f"campo-tls/{run}/#", lambda t, payload, _r: heard.update({t: payload}))
    host = MqttDriver(MqttLink(Broker.from_settings(settings)))
    pip = PointRef("pip", MqttAddress(metric="pip", group=f"g{run}", edge_node="pad7",
                                      device="pad7.w1"))
    sinks = upstream_sinks(tags, settings)
    assert [s.name for s in sinks] == ["upstream", "sparkplug"]
    edge = sinks[1].edge
    try:
        assert await watcher.connect() and await host.connect() is None
        await host.read([pip])  # follows the node, asks for a birth
        for sink in sinks:
            await sink.start()
        assert edge.link.connected and edge.link.broker.tls
        assert sinks[0].link.connected and sinks[0].link.broker.tls
        for sink in sinks:
            sink.publish([TagValue("pad7.w1.pip", 812.5, Quality.GOOD, NOW)])
        end = time.monotonic() + 10
        while (f"campo-tls/{run}/pad7/pad7/w1/pip" not in heard
               or (await host.read([pip]))["pip"].value != 812.5):
            assert time.monotonic() < end, (sorted(heard), host._cache.get("pip"))
            await asyncio.sleep(0.05)
        assert json.loads(heard[f"campo-tls/{run}/pad7/pad7/w1/pip"])["value"] == 812.5
        assert int((tmp_path / "sparkplug" / f"g{run}.pad7.bdseq").read_text()) == edge.bd_seq
    finally:
        for sink in sinks:
            await sink.stop()
        await host.close()
        watcher.publish(f"campo-tls/{run}/pad7/pad7/w1/pip", b"", qos=1, retain=True)
        await asyncio.sleep(0.1)
        await watcher.close()


def test_notifications_over_tls_with_the_settings_broker(broker: TlsBroker) -> None:
    from engine.notify.channels import DeliveryError, MqttSender
    from metamodel.notify import MqttChannel

    settings = Settings(mqtt_url=f"mqtts://127.0.0.1:{broker.port}", mqtt_ca_file=broker.ca_file,
                        mqtt_username=USER, mqtt_password=SecretStr(PASSWORD))
    topic = f"campo-tls/{uuid.uuid4().hex[:8]}/alarms"
    heard: list[bytes] = []
    watcher = MqttBus(Broker.from_settings(settings), prefix="campo-tls/unused")
    watcher._client.message_callback_add(topic, lambda _c, _u, msg: heard.append(msg.payload))
    sender = MqttSender()
    ch = MqttChannel(type="mqtt", topic=topic)
    try:
        assert watcher.wait_connected()
        watcher._client.subscribe(topic, 1)
        time.sleep(0.2)  # the subscription is in place
        sender.send(ch, Broker.from_settings(settings), topic, {"alarm": "pip_low"})
        assert _wait(lambda: heard != [])
        assert json.loads(heard[0]) == {"alarm": "pip_low"}
        # a refused login: the stored error names the broker, never the password
        with pytest.raises(DeliveryError) as err:
            sender.send(ch, broker.url().replace("s3cret", "wrong"), topic, {}, timeout=1.0)
        assert str(err.value) == f"MQTT broker mqtts://127.0.0.1:{broker.port} not connected"
    finally:
        sender.close()
        watcher.close()
