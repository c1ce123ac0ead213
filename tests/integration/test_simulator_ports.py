"""The simulated pad's ports: ``campo simulate`` says a port is taken (no traceback), and
``campo serve``'s simulator listens where ``CAMPO_SIM_MODBUS_PORT`` and
``CAMPO_SIM_OPCUA_ENDPOINT`` say, the same variables the tag map's ``sim_pad`` site reads."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.scada.simulator import SimulatorPlugin, serve_plugin
from engine.settings import Settings
from metamodel.tags import load_tags

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port another program listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(("flag", "other", "what"), [
    ("--modbus-port", "--opcua-port", "Modbus TCP"),
    ("--opcua-port", "--modbus-port", "OPC-UA"),
])
def test_simulate_on_a_busy_port_says_so(busy_port: int, flag: str, other: str,
                                         what: str) -> None:
    done = subprocess.run([sys.executable, "-m", "engine.cli", "simulate", "--wells", "1",
                           flag, str(busy_port), other, "0"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert f"cannot start the simulator: {what} port {busy_port} on 127.0.0.1 is already " \
           f"in use\n  hint: stop the program that uses it, or choose another port with " \
           f"{flag} P" in done.stderr
    assert "Traceback" not in done.stderr and "RuntimeError" not in done.stderr


def test_serve_simulator_follows_the_tag_map_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    modbus, opcua = free_port(), free_port()
    endpoint = f"opc.tcp://127.0.0.1:{opcua}/campo/sim"
    monkeypatch.setenv("CAMPO_SIM_MODBUS_PORT", str(modbus))
    monkeypatch.setenv("CAMPO_SIM_OPCUA_ENDPOINT", endpoint)
    settings = Settings(simulate=True)
    assert (settings.sim_modbus_port, settings.sim_opcua_endpoint) == (modbus, endpoint)
    # the tag map reads the same variables: the runtime polls where the simulator listens
    tags = load_tags(REPO, environ={"CAMPO_SIM_MODBUS_PORT": str(modbus),
                                    "CAMPO_SIM_OPCUA_ENDPOINT": endpoint})
    assert tags.devices["sim_pad.plc"].spec.port == modbus
    assert tags.devices["sim_pad.ua"].spec.endpoint == endpoint
    plugin = serve_plugin(None, None, settings)
    assert isinstance(plugin, SimulatorPlugin) and plugin.ports == (modbus, opcua)
    plugin.start()
    try:
        end = time.monotonic() + 30
        while plugin.simulator.ports.opcua == 0 and time.monotonic() < end:
            time.sleep(0.05)
        ports = plugin.simulator.ports
        assert (ports.modbus, ports.opcua) == (modbus, opcua)
        assert plugin.simulator.opcua_url == endpoint
        with socket.create_connection(("127.0.0.1", modbus), timeout=2):
            pass
    finally:
        plugin.stop()
