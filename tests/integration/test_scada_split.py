"""Web and SCADA runtime in separate processes: ``campo scada`` publishing over Mosquitto."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.bus.mqtt import MqttBus
from engine.scada.simulator import Simulator

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    s = Simulator(4, tick_s=0.1)
    s.start_in_thread()
    yield s
    s.stop_thread()


def test_campo_scada_publishes_values_and_serves_writes(sim: Simulator, mqtt_url: str,
                                                        tmp_path: Path) -> None:
    prefix = f"campo-test/{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAMPO_")}
    env.update(CAMPO_SIM_MODBUS_PORT=str(sim.ports.modbus), CAMPO_SIM_OPCUA_ENABLED="false",
               CAMPO_BUS_PREFIX=prefix, CAMPO_DATA_DIR=str(tmp_path))
    log = (tmp_path / "scada.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "scada", "--project",
                             str(REPO), "--mqtt-url", mqtt_url],
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    web = MqttBus(mqtt_url, prefix=prefix)
    try:
        assert web.wait_connected(10)
        end = time.monotonic() + 30
        while time.monotonic() < end:
            snap = {v.tag: v for v in web.snapshot(["sim_pad.w1.*"])}
            if snap.get("sim_pad.w1.frequency") and snap["sim_pad.w1.frequency"].quality == "good":
                break
            assert proc.poll() is None, (tmp_path / "scada.log").read_text()
            time.sleep(0.1)
        else:
            pytest.fail("no good values over the bus: " + (tmp_path / "scada.log").read_text())
        assert 39 < snap["sim_pad.w1.frequency"].value < 61
        out = web.request_write("sim_pad.w2.frequency_setpoint", 48.0, {"roles": ["operator"]},
                                timeout=15)
        assert out.ok, out.error
        assert out.value == pytest.approx(48.0, abs=0.01)
        assert sim.snapshot(2).frequency_setpoint == pytest.approx(48.0, abs=0.01)
        refused = web.request_write("sim_pad.w2.frequency_setpoint", 48.0, {"roles": ["viewer"]},
                                    timeout=15)
        assert not refused.ok and refused.error
    finally:
        web.close()
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(timeout=20) == 0
        finally:
            log.close()
            clean = MqttBus(mqtt_url, prefix=prefix)  # drop the retained test values
            if clean.wait_connected(5):
                time.sleep(1.0)  # retained values arrive after the subscription
                for tag in [v.tag for v in clean.snapshot()] or []:
                    clean._client.publish(f"{prefix}/v/{tag}", b"", retain=True)
                time.sleep(0.3)
            clean.close()


def test_campo_scada_reports_its_status_to_web_processes(sim: Simulator, mqtt_url: str,
                                                         tmp_path: Path) -> None:
    """Without CAMPO_BUS in its environment (as ``campo serve`` starts it), ``campo scada``
    reports the runtime's status on the bus; a web process serves it (source ``remote``)."""
    from engine.bus.events import MqttEventHub
    from engine.live.scada_views import ScadaStatus

    prefix = f"campo-test/{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAMPO_")}
    env.update(CAMPO_SIM_MODBUS_PORT=str(sim.ports.modbus), CAMPO_SIM_OPCUA_ENABLED="false",
               CAMPO_BUS_PREFIX=prefix, CAMPO_DATA_DIR=str(tmp_path))
    hub = MqttEventHub(mqtt_url, prefix)
    status = ScadaStatus(hub=hub)
    log = (tmp_path / "scada.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "scada", "--project",
                             str(REPO), "--mqtt-url", mqtt_url],
                            stdout=log, stderr=subprocess.STDOUT, env=env)

    class Admin:
        all_sites = True

        @staticmethod
        def may_see_site(site: str | None) -> bool:
            return True

    try:
        end = time.monotonic() + 30
        while time.monotonic() < end:
            body = status.for_viewer(Admin())
            plc = [d for d in body["devices"] if d["device"] == "sim_pad.plc"]
            if plc and plc[0]["state"] == "online" and plc[0]["scan_classes"]:
                break
            assert proc.poll() is None, (tmp_path / "scada.log").read_text()
            time.sleep(0.2)
        else:
            pytest.fail("no status report over the bus: " + (tmp_path / "scada.log").read_text())
        assert body["source"] == "remote" and body["running"] is True and not body["stale"]
        assert {c["scan_class"] for c in plc[0]["scan_classes"]} >= {"fast", "normal"}
        assert body["plan"]["ok"] is True
        ua = next(d for d in body["devices"] if d["device"] == "sim_pad.ua")
        assert ua["state"] == "disabled" and ua["reason"] == "device disabled"
    finally:
        status.close()
        hub.close()
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(timeout=20) == 0
        finally:
            log.close()
