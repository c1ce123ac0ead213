"""The bus between the web side and the SCADA side: in-process and over real Mosquitto."""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any

import pytest

from engine.bus import InProcessBus, LiveValue, WriteOutcome
from engine.bus.mqtt import MqttBus

NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)


def _v(tag: str, value: Any, quality: str = "good") -> LiveValue:
    return LiveValue(tag, value, quality, NOW)


def _wait(cond: Any, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


def test_inprocess_snapshot_subscribe_and_write() -> None:
    bus = InProcessBus()
    got: list[str] = []
    sub = bus.subscribe(["pad1.*.pip"], lambda vs: got.extend(v.tag for v in vs))
    bus.publish([_v("pad1.w1.pip", 812.5), _v("pad1.w1.thp", 150.0), _v("pad2.w1.pip", 1.0)])
    assert got == ["pad1.w1.pip"]
    assert [v.tag for v in bus.snapshot(["pad1.**"])] == ["pad1.w1.pip", "pad1.w1.thp"]
    assert bus.snapshot(["pad1.*"]) == []  # '*' stays within one segment, as in REST
    assert set(bus.latest(["pad1.w1.thp", "nope"])) == {"pad1.w1.thp"}
    sub.close()
    bus.publish([_v("pad1.w2.pip", 3.0)])
    assert got == ["pad1.w1.pip"]
    assert bus.request_write("pad1.w1.sp", 50, {}).ok is False  # runtime not serving yet
    bus.serve_writes(lambda tag, value, meta: WriteOutcome(True, value * 2))
    assert bus.request_write("pad1.w1.sp", 21, {}) == WriteOutcome(True, 42)


@pytest.mark.integration
def test_mqtt_bus_values_retained_and_writes_round_trip(mqtt_url: str) -> None:
    prefix = f"campo-test/{uuid.uuid4().hex[:8]}"
    scada = MqttBus(mqtt_url, prefix=prefix)
    assert scada.wait_connected()
    seen: list[tuple[str, Any]] = []

    def handler(tag: str, value: Any, meta: dict[str, Any]) -> WriteOutcome:
        seen.append((tag, meta.get("user")))
        return WriteOutcome(True, value)

    scada.serve_writes(handler)
    scada.publish([_v("pad1.w1.pip", 812.5), _v("pad1.w1.running", True)])
    # a web process that connects later still gets the retained values
    web = MqttBus(mqtt_url, prefix=prefix)
    try:
        assert web.wait_connected()
        assert _wait(lambda: len(web.snapshot()) == 2)
        snap = {v.tag: v for v in web.snapshot()}
        assert snap["pad1.w1.pip"].value == 812.5 and snap["pad1.w1.pip"].ts == NOW
        pushed: list[Sequence[LiveValue]] = []
        web.subscribe(["pad1.w1.pip"], pushed.append)
        scada.publish([_v("pad1.w1.pip", 799.0, "uncertain")])
        assert _wait(lambda: bool(pushed))
        assert pushed[-1][0].value == 799.0 and pushed[-1][0].quality == "uncertain"
        time.sleep(0.2)  # let the scada side's write subscription settle
        out = web.request_write("pad1.w1.sp", 52.5, {"user": "ana"}, timeout=5)
        assert out == WriteOutcome(True, 52.5)
        assert seen == [("pad1.w1.sp", "ana")]
    finally:
        for tag in ("pad1.w1.pip", "pad1.w1.running"):  # clear retained test messages
            scada._client.publish(f"{prefix}/v/{tag}", b"", retain=True)
        time.sleep(0.1)
        web.close()
        scada.close()


@pytest.mark.integration
def test_mqtt_write_without_runtime_times_out_cleanly(mqtt_url: str) -> None:
    web = MqttBus(mqtt_url, prefix=f"campo-test/{uuid.uuid4().hex[:8]}")
    try:
        assert web.wait_connected()
        t0 = time.monotonic()
        out = web.request_write("x.y", 1, {}, timeout=0.5)
        assert out.ok is False and "no answer" in (out.error or "")
        assert time.monotonic() - t0 < 3
    finally:
        web.close()


def test_mqtt_bus_with_unreachable_broker_never_raises() -> None:
    bus = MqttBus("mqtt://127.0.0.1:9", prefix="x")  # nothing listens on port 9
    try:
        assert bus.wait_connected(0.3) is False
        bus.publish([_v("a.b", 1)])  # queued, no exception
        out = bus.request_write("a.b", 1, {}, timeout=0.2)
        assert out.ok is False and "not reachable" in (out.error or "")
        assert threading.active_count() >= 1
    finally:
        bus.close()
