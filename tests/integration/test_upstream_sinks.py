"""Upstream JSON and Sparkplug B are runtime sinks: queued off the scan path, with figures.

Against the real Mosquitto and the simulator's Modbus server: both outputs are the runtime's
sinks (no other upstream path), their backlog and counts are in the runtime's status, values
that are no tags (the alarms' states) reach the edge node through the same queue, and a
broker that is not there neither delays the runtime's start nor stops polling.
"""

from __future__ import annotations

import datetime as dt
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from test_upstream import Listener

from engine.bus import InProcessBus
from engine.scada import sparkplug_pb as pb
from engine.scada.simulator import Simulator
from engine.scada.types import Quality, TagValue
from engine.scada.upstream import START_WAIT
from engine.settings import Settings
from engine.wiring.edge import RuntimeBridge
from metamodel.tags import load_tags

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    s = Simulator(2, tick_s=0.1)
    s.start_in_thread()
    yield s
    s.stop_thread()


def until(check: Callable[[], Any], within: float = 15.0) -> Any:
    end = time.monotonic() + within
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > end:
            pytest.fail(f"condition not met within {within} s")
        time.sleep(0.05)


def sinks(bridge: RuntimeBridge) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in bridge.status()["sinks"]}


def test_upstream_and_sparkplug_are_sinks_with_their_figures(sim: Simulator, mqtt_url: str,
                                                              tmp_path: Path) -> None:
    run = uuid.uuid4().hex[:8]
    extra = "sim_pad.alarms.w1/esp_stopped"  # a metric that is no tag, as the alarms add
    settings = Settings(mqtt_url=mqtt_url, upstream_topic=f"campo-test/{run}/{{tag_path}}",
                        sparkplug_group=f"g{run}", sparkplug_node="pad", data_dir=tmp_path)
    tags = load_tags(REPO, params={"sim_pad.modbus_port": sim.ports.modbus,
                                   "sim_pad.opcua_enabled": False})
    listener = Listener(mqtt_url, [f"campo-test/{run}/#", f"spBv1.0/g{run}/#"])
    bridge = RuntimeBridge(tags, InProcessBus(), settings,
                           extra_metrics={extra: int(pb.DataType.String)})
    assert [s.name for s in bridge.thread.runtime.sinks.sinks] == ["upstream", "sparkplug"]
    bridge.start()
    try:
        n_tags = len(tags.tags)
        # every tag's first value and its changes went through each sink's queue
        got = until(lambda: (s := sinks(bridge)) and all(
            s[name]["published"] > n_tags for name in ("upstream", "sparkplug")) and s)
        for name in ("upstream", "sparkplug"):
            assert got[name]["mode"] == "task" and got[name]["failures"] == 0
            assert got[name]["dropped"] == 0 and got[name]["backlog"] >= 0
        listener.wait_for(lambda m: f"campo-test/{run}/sim_pad/w1/frequency" in m)
        listener.wait_for(lambda m: f"spBv1.0/g{run}/DBIRTH/pad/sim_pad.alarms" in m)

        before = sinks(bridge)["sparkplug"]["published"]
        bridge.sparkplug_publish([TagValue(extra, "unack_active", Quality.GOOD,
                                           dt.datetime.now(dt.UTC))])
        ddata = f"spBv1.0/g{run}/DDATA/pad/sim_pad.alarms"

        def raised(m: dict[str, bytes]) -> bool:
            return ddata in m and any(x.value == "unack_active"
                                      for x in pb.decode_payload(m[ddata]).metrics)

        listener.wait_for(raised)
        assert sinks(bridge)["sparkplug"]["published"] >= before + 1
    finally:
        bridge.stop()
        for t in list(listener.messages):  # clear the retained test values
            if t.startswith("campo-test/"):
                listener.client.publish(t, b"", retain=True)
        time.sleep(0.3)
        listener.close()


def test_an_absent_broker_delays_nothing_and_polling_goes_on(sim: Simulator,
                                                             tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    settings = Settings(mqtt_url=f"mqtt://127.0.0.1:{port}", upstream_topic="campo/{tag_path}",
                        sparkplug_group="g", sparkplug_node="pad", data_dir=tmp_path)
    tags = load_tags(REPO, params={"sim_pad.modbus_port": sim.ports.modbus,
                                   "sim_pad.opcua_enabled": False})
    bridge = RuntimeBridge(tags, InProcessBus(), settings)
    t0 = time.monotonic()
    bridge.start()
    try:
        started = time.monotonic() - t0
        assert started < START_WAIT + 2.0  # both sinks wait for their broker together
        until(lambda: (v := bridge.thread.runtime.get("sim_pad.w1.frequency")) is not None
              and v.quality is Quality.GOOD)
        got = sinks(bridge)
        assert set(got) == {"upstream", "sparkplug"}
        assert all(s["dropped"] == 0 for s in got.values())
    finally:
        bridge.stop()
