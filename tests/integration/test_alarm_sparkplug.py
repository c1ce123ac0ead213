"""Alarm states as Sparkplug B metrics when the site publishes Sparkplug: device
``sim_pad.alarms`` is born with one String metric per alarm, and a trip injected in the
simulator arrives as a DDATA ``unack_active`` on Mosquitto."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_upstream import Listener

from engine.bus import InProcessBus
from engine.db import create_engine_for
from engine.scada import sparkplug_pb as pb
from engine.scada.sim.model import Fault
from engine.scada.simulator import PhysicsConfig, Simulator
from engine.settings import Settings
from engine.wiring.edge import EdgePlugin
from metamodel.tags import load_tags

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
FAST = PhysicsConfig(ramp_hz_per_s=40.0, rate_tau_s=0.3, drawdown_tau_s=0.6, thermal_tau_s=0.6)


@pytest.fixture
def sim() -> Iterator[Simulator]:
    s = Simulator(4, tick_s=0.1, physics=FAST)
    s.start_in_thread()
    yield s
    s.stop_thread()


def test_alarm_states_are_sparkplug_metrics(sim: Simulator, tmp_path: Path,
                                            mqtt_url: str) -> None:
    run = uuid.uuid4().hex[:8]
    project = tmp_path / "project"
    project.mkdir()
    (project / "tags").symlink_to(REPO / "tags")
    settings = Settings(project=project, data_dir=tmp_path, mqtt_url=mqtt_url,
                        sparkplug_group=f"g{run}", sparkplug_node="pad",
                        alarm_topic=f"t{run}/alarms", simulate=False)
    tags = load_tags(project, params={"sim_pad.modbus_port": sim.ports.modbus,
                                      "sim_pad.opcua_enabled": False})
    engine = create_engine_for(f"sqlite:///{tmp_path / 'campo.db'}")
    listener = Listener(mqtt_url, [f"spBv1.0/g{run}/#", f"t{run}/#"])
    plugin = EdgePlugin(tags, InProcessBus(), engine, run_runtime=True, settings=settings)
    plugin.start()
    device = f"spBv1.0/g{run}/DBIRTH/pad/sim_pad.alarms"
    ddata = f"spBv1.0/g{run}/DDATA/pad/sim_pad.alarms"
    try:
        born = listener.wait_for(lambda m: device in m, within=30)
        birth = pb.decode_payload(born[device])
        alias = {m.name: m.alias for m in birth.metrics}
        assert "w1/esp_stopped" in alias and "w1/pip_low/lo" in alias
        assert all(m.datatype == pb.DataType.String for m in birth.metrics
                   if m.name.startswith("w1/"))
        time.sleep(1.5)
        sim.inject(1, Fault.TRIP)

        def raised(m: dict[str, bytes]) -> bool:
            if ddata not in m:
                return False
            p = pb.decode_payload(m[ddata])
            return any((x.name == "w1/esp_stopped" or x.alias == alias["w1/esp_stopped"])
                       and x.value == "unack_active" for x in p.metrics)

        listener.wait_for(raised, within=30)
    finally:
        plugin.stop()
        for t in list(listener.messages):  # clear the retained test values
            if t.startswith(f"t{run}/"):
                listener.client.publish(t, b"", retain=True)
        time.sleep(0.3)
        listener.close()
        engine.dispose()


