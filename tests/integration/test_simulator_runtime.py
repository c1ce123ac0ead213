"""The repository's sim_pad tag map, run by the SCADA runtime against the simulator.

Both devices of the map (the Modbus ``plc`` and the OPC-UA ``ua``) read the same simulated
units, through the driver registry (``create``/``point`` of each driver module).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from engine.scada.runtime import Runtime
from engine.scada.simulator import Fault, PhysicsConfig, Simulator
from engine.scada.types import Quality
from metamodel.tags import load_tags

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
FAST = PhysicsConfig(ramp_hz_per_s=40.0, rate_tau_s=0.3, drawdown_tau_s=0.6, thermal_tau_s=0.6)


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    s = Simulator(4, tick_s=0.1, physics=FAST)
    s.start_in_thread()
    yield s
    s.stop_thread()


@pytest.fixture
async def runtime(sim: Simulator) -> AsyncIterator[Runtime]:
    model = load_tags(REPO, params={"sim_pad.modbus_port": sim.ports.modbus,
                                    "sim_pad.opcua_endpoint": sim.opcua_url,
                                    "sim_pad.opcua_enabled": True})
    rt = Runtime(model)
    await rt.start()
    yield rt
    await rt.stop()


async def until(check: Callable[[], bool], within: float = 20.0) -> None:
    end = time.monotonic() + within
    while not check():
        if time.monotonic() > end:
            pytest.fail(f"condition not met within {within} s")
        await asyncio.sleep(0.05)


def good(rt: Runtime, path: str) -> bool:
    v = rt.get(path)
    return v is not None and v.quality is Quality.GOOD


async def test_both_devices_read_the_same_units(sim: Simulator, runtime: Runtime) -> None:
    paths = [f"sim_pad.{dev}w{n}.{sig}" for dev in ("", "ua.") for n in (1, 2)
             for sig in ("pip", "frequency", "running", "trip_cause")]
    await until(lambda: all(good(runtime, p) for p in paths))
    for n in (1, 2):
        mb, ua = runtime.get(f"sim_pad.w{n}.frequency"), runtime.get(f"sim_pad.ua.w{n}.frequency")
        assert mb is not None and ua is not None
        assert mb.value == pytest.approx(ua.value, abs=0.02)
        assert mb.value == pytest.approx(sim.snapshot(n).frequency, abs=0.02)
        pip_mb = runtime.get(f"sim_pad.w{n}.pip")
        pip_ua = runtime.get(f"sim_pad.ua.w{n}.pip")
        assert pip_mb is not None and pip_ua is not None
        assert abs(pip_mb.value - pip_ua.value) < 30  # same model, noise and scan skew only
        running = runtime.get(f"sim_pad.ua.w{n}.running")
        assert running is not None and running.value is True


async def test_write_over_opcua_moves_the_unit_modbus_sees_it(sim: Simulator,
                                                               runtime: Runtime) -> None:
    await until(lambda: good(runtime, "sim_pad.ua.w2.frequency_setpoint"))
    result = await runtime.write("sim_pad.ua.w2.frequency_setpoint", 57.5, {"operator"})
    assert result.value == pytest.approx(57.5)
    assert sim.snapshot(2).frequency_setpoint == pytest.approx(57.5)

    def moved() -> bool:
        v = runtime.get("sim_pad.w2.frequency")
        return v is not None and v.value == pytest.approx(57.5, abs=0.02)

    await until(moved)


async def test_comms_loss_turns_one_unit_bad_on_both_devices(sim: Simulator,
                                                             runtime: Runtime) -> None:
    await until(lambda: good(runtime, "sim_pad.w3.pip") and good(runtime, "sim_pad.ua.w3.pip"))
    sim.inject(3, Fault.COMMS_LOSS)
    try:
        await until(lambda: not good(runtime, "sim_pad.w3.pip")
                    and not good(runtime, "sim_pad.ua.w3.pip"))
        ua = runtime.get("sim_pad.ua.w3.pip")
        assert ua is not None and ua.reason == "BadNoCommunication"
        assert good(runtime, "sim_pad.w1.pip") and good(runtime, "sim_pad.ua.w1.pip")
    finally:
        sim.clear(3)
    await until(lambda: good(runtime, "sim_pad.w3.pip") and good(runtime, "sim_pad.ua.w3.pip"))
