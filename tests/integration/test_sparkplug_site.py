"""The site as a Sparkplug B edge node: simulator -> runtime -> edge node -> Mosquitto -> host."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.scada.drivers.mqtt import MqttDriver, MqttLink
from engine.scada.runtime import Runtime
from engine.scada.simulator import Simulator
from engine.scada.sparkplug import SparkplugEdgeNode, datatypes_from
from engine.scada.types import PointRef, Quality
from metamodel.tags import MqttAddress, load_tags

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


async def until(check: Callable[[], bool], within: float = 20.0) -> None:
    end = time.monotonic() + within
    while not check():
        if time.monotonic() > end:
            pytest.fail(f"condition not met within {within} s")
        await asyncio.sleep(0.05)


async def test_runtime_values_reach_a_sparkplug_host(mqtt_url: str) -> None:
    sim = Simulator(2, tick_s=0.2)
    ports = await sim.start()
    model = load_tags(REPO, params={"sim_pad.modbus_port": ports.modbus,
                                    "sim_pad.opcua_enabled": False})
    runtime = Runtime(model)
    group = f"campo-test-{uuid.uuid4().hex[:8]}"
    edge = SparkplugEdgeNode(MqttLink(mqtt_url), group, "sim_pad",
                             datatypes_from(model.tags.values()))
    host = MqttDriver(MqttLink(mqtt_url))
    pts = [PointRef(sig, MqttAddress(metric=sig, group=group, edge_node="sim_pad",
                                     device="sim_pad.w1"))
           for sig in ("pip", "running", "trip_cause")]
    try:
        await runtime.start()
        runtime.subscribe("**", edge.publish)
        assert await edge.start()
        await host.connect()
        await host.read(pts)  # asks the edge node for a rebirth, then follows its data

        def same() -> bool:
            tv = runtime.get("sim_pad.w1.pip")
            got = host._cache.get("pip")
            return (tv is not None and got is not None and tv.quality is Quality.GOOD
                    and got.value == tv.value)

        await until(same)
        running = host._cache.get("running")
        assert running is not None and running.value is True
        trip = host._cache.get("trip_cause")
        assert trip is not None and trip.value == 0 and isinstance(trip.value, int)
        assert edge.births >= 2 and "sim_pad.w2" in edge.devices
    finally:
        await host.close()
        await edge.stop()
        await runtime.stop()
        await sim.stop()
