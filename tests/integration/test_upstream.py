"""Tag changes published upstream from `campo serve`/`campo scada`: retained JSON and a
Sparkplug B edge node, on the real Mosquitto, from the runtime polling the simulator."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from engine.bus import InProcessBus
from engine.scada import sparkplug_pb as pb
from engine.scada.simulator import Simulator
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


class Listener:
    def __init__(self, url: str, topics: list[str]) -> None:
        host, port = url.removeprefix("mqtt://").split(":")
        self.messages: dict[str, bytes] = {}
        self.lock = threading.Lock()
        self.ready = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=f"listener-{uuid.uuid4().hex[:8]}")

        def on_connect(c: Any, *_: Any) -> None:
            c.subscribe([(t, 0) for t in topics])
            self.ready.set()

        def on_message(_c: Any, _u: Any, msg: Any) -> None:
            with self.lock:
                self.messages[msg.topic] = msg.payload

        self.client.on_connect = on_connect
        self.client.on_message = on_message
        self.client.connect(host, int(port))
        self.client.loop_start()
        assert self.ready.wait(10)

    def wait_for(self, predicate: Any, within: float = 20) -> dict[str, bytes]:
        end = time.monotonic() + within
        while time.monotonic() < end:
            with self.lock:
                snap = dict(self.messages)
            if predicate(snap):
                return snap
            time.sleep(0.1)
        pytest.fail(f"no matching upstream messages within {within} s: {sorted(snap)[:10]}")

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def test_runtime_publishes_retained_json_and_sparkplug(sim: Simulator, mqtt_url: str,
                                                       tmp_path: Path) -> None:
    run = uuid.uuid4().hex[:8]
    settings = Settings(mqtt_url=mqtt_url, upstream_topic=f"campo-test/{run}/{{site}}/{{tag_path}}",
                        sparkplug_group=f"g{run}", sparkplug_node="pad", data_dir=tmp_path)
    tags = load_tags(REPO, params={"sim_pad.modbus_port": sim.ports.modbus,
                                   "sim_pad.opcua_enabled": False})
    listener = Listener(mqtt_url, [f"campo-test/{run}/#", f"spBv1.0/g{run}/#"])
    bridge = RuntimeBridge(tags, InProcessBus(), settings)
    bridge.start()
    try:
        topic = f"campo-test/{run}/sim_pad/sim_pad/w1/frequency"
        got = listener.wait_for(lambda m: topic in m and json.loads(m[topic])["quality"] == "good")
        body = json.loads(got[topic])
        assert body["tag"] == "sim_pad.w1.frequency" and 39 < body["value"] < 61
        births = listener.wait_for(lambda m: f"spBv1.0/g{run}/NBIRTH/pad" in m)
        payload = pb.decode_payload(births[f"spBv1.0/g{run}/NBIRTH/pad"])
        bd_seq = [m.value for m in payload.metrics if m.name == "bdSeq"]
        # the session's bdSeq, kept in the data folder for the next process
        assert bd_seq == [int((tmp_path / "sparkplug" / f"g{run}.pad.bdseq").read_text())]
        listener.wait_for(lambda m: any(t.startswith(f"spBv1.0/g{run}/DDATA/pad/")
                                        for t in m))
    finally:
        bridge.stop()
        for t in list(listener.messages):  # clear the retained test values
            if t.startswith("campo-test/"):
                listener.client.publish(t, b"", retain=True)
        time.sleep(0.3)
        listener.close()
