"""The simulated pad over real protocol servers: pymodbus TCP and asyncua, one model."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
from asyncua import Client, ua
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusIOException

from engine.scada.sim.modbus_face import encode_registers
from engine.scada.simulator import NAMESPACE_URI, Fault, PhysicsConfig, Simulator

pytestmark = pytest.mark.integration

FAST = PhysicsConfig(ramp_hz_per_s=40.0, rate_tau_s=0.3, drawdown_tau_s=0.6, buildup_tau_s=1.5,
                     thermal_tau_s=0.6, gas_lock_period_s=1.0, noise=1.0)
F32 = AsyncModbusTcpClient.DATATYPE.FLOAT32


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    """Six units with fast dynamics; each test below uses its own unit."""
    s = Simulator(6, tick_s=0.05, physics=FAST)
    s.start_in_thread()
    yield s
    s.stop_thread()


@pytest.fixture
async def mb(sim: Simulator) -> AsyncIterator[AsyncModbusTcpClient]:
    client = AsyncModbusTcpClient("127.0.0.1", port=sim.ports.modbus, timeout=1.5, retries=0)
    assert await client.connect()
    yield client
    client.close()


@pytest.fixture
async def ua_client(sim: Simulator) -> AsyncIterator[tuple[Client, int]]:
    client = Client(sim.opcua_url, timeout=5)
    await client.connect()
    idx = await client.get_namespace_index(NAMESPACE_URI)
    yield client, idx
    await client.disconnect()


async def regs(mb: AsyncModbusTcpClient, unit: int) -> dict[str, Any]:
    """Decode one unit's holding registers as the shared map says."""
    r = (await mb.read_holding_registers(0, count=31, device_id=unit)).registers
    hours = mb.convert_from_registers(r[11:13], mb.DATATYPE.UINT32)
    return {
        "pip": mb.convert_from_registers(r[0:2], F32),
        "thp": mb.convert_from_registers(r[2:4], F32),
        "chp": mb.convert_from_registers(r[4:6], F32), "current": r[6] * 0.1,
        "frequency": r[7] * 0.01, "rate": mb.convert_from_registers(r[8:10], F32),
        "temp": (r[10] - 65536 if r[10] > 32767 else r[10]) * 0.1, "hours": hours,
        "trip": r[13], "setpoint": r[20] * 0.01, "fault": r[30],
    }


async def until(check: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    """Poll ``check`` until it is true; fail after ``timeout`` seconds."""
    end = time.monotonic() + within
    while True:
        if await check():
            return
        if time.monotonic() > end:
            pytest.fail(f"condition not met within {within} s")
        await asyncio.sleep(0.05)


async def test_both_faces_show_the_same_model(sim: Simulator, mb: AsyncModbusTcpClient,
                                              ua_client: tuple[Client, int]) -> None:
    client, idx = ua_client
    sim.pause()
    try:
        await asyncio.sleep(0.3)  # let the last publish land
        m = await regs(mb, 6)
        names = ["IntakePressure", "TubingPressure", "CasingPressure", "MotorCurrent", "Frequency",
                 "LiquidRate", "MotorTemperature", "Running", "TripCause", "FrequencySetpoint"]
        nodes = [client.get_node(ua.NodeId(f"W6.{n}", idx)) for n in names]
        v = dict(zip(names, await client.read_values(nodes), strict=True))
    finally:
        sim.resume()
    assert v["IntakePressure"] == pytest.approx(m["pip"], rel=1e-6)
    assert v["TubingPressure"] == pytest.approx(m["thp"], rel=1e-6)
    assert v["CasingPressure"] == pytest.approx(m["chp"], rel=1e-6)
    assert v["LiquidRate"] == pytest.approx(m["rate"], rel=1e-6)
    assert v["MotorCurrent"] == pytest.approx(m["current"], abs=0.051)
    assert v["Frequency"] == pytest.approx(m["frequency"], abs=0.006)
    assert v["MotorTemperature"] == pytest.approx(m["temp"], abs=0.051)
    assert v["FrequencySetpoint"] == pytest.approx(m["setpoint"], abs=0.006)
    assert v["Running"] is True and v["TripCause"] == m["trip"] == 0
    # plausible ranges (docs/simulator.md, DOMAIN.md)
    assert 200 <= m["pip"] <= 1500 and 100 <= m["thp"] <= 400 and 50 <= m["chp"] <= 300
    assert 20 <= m["current"] <= 90 and 40 <= m["frequency"] <= 60
    assert 200 <= m["rate"] <= 3000 and 90 <= m["temp"] <= 150 and m["hours"] > 0


async def test_setpoint_write_moves_frequency_current_and_rate(
        sim: Simulator, mb: AsyncModbusTcpClient, ua_client: tuple[Client, int]) -> None:
    before = await regs(mb, 1)
    assert before["setpoint"] == pytest.approx(45.0)
    assert not (await mb.write_register(20, 5900, device_id=1)).isError()

    async def moved() -> bool:
        now = await regs(mb, 1)
        return (now["frequency"] == pytest.approx(59.0, abs=0.01)
                and now["current"] > before["current"] + 10
                and now["rate"] > before["rate"] * 1.2 and now["pip"] < before["pip"] - 50)

    await until(moved)
    client, idx = ua_client
    sp = client.get_node(ua.NodeId("W1.FrequencySetpoint", idx))
    assert await sp.read_value() == pytest.approx(59.0)
    # and back down over OPC-UA: both faces drive the same model
    await sp.write_value(ua.Variant(41.0, ua.VariantType.Double))
    await until(lambda: _is(regs(mb, 1), lambda r: r["frequency"] == pytest.approx(41.0, abs=0.01)
                              and r["current"] < before["current"]))
    # out of range: Modbus exception 3 (ILLEGAL_VALUE), model unchanged
    bad = await mb.write_register(20, 7000, device_id=1)
    assert bad.isError() and bad.exception_code == 3
    assert sim.snapshot(1).frequency_setpoint == pytest.approx(41.0)
    await sp.write_value(ua.Variant(75.0, ua.VariantType.Double))
    await until(lambda: _is(sp.read_value(), lambda v: v == pytest.approx(41.0)))


async def _is(value: Awaitable[Any], pred: Callable[[Any], bool]) -> bool:
    return bool(pred(await value))


async def test_trip_fault_stops_the_unit_until_cleared(sim: Simulator,
                                                       mb: AsyncModbusTcpClient) -> None:
    start = await regs(mb, 2)
    assert not (await mb.write_register(30, int(Fault.TRIP), device_id=2)).isError()
    r = await regs(mb, 2)
    assert r["current"] == 0 and r["trip"] == 1 and r["fault"] == 1
    assert (await mb.read_coils(0, count=2, device_id=2)).bits[:2] == [False, True]
    await until(lambda: _is(regs(mb, 2), lambda r: r["rate"] == 0 and r["frequency"] == 0
                              and r["pip"] > start["pip"] + 100))  # PIP builds up
    # a start is refused while the trip is active, accepted once it is cleared
    assert not (await mb.write_coil(1, True, device_id=2)).isError()
    assert (await mb.read_coils(0, count=1, device_id=2)).bits[0] is False
    assert not (await mb.write_register(30, 0, device_id=2)).isError()
    assert not (await mb.write_coil(1, True, device_id=2)).isError()
    await until(lambda: _is(regs(mb, 2), lambda r: r["trip"] == 0 and r["current"] > 20
                              and r["rate"] > 200))
    assert (await mb.write_coil(0, False, device_id=2)).isError()  # status coil is read-only


async def test_stuck_sensor_freezes_pip_only(sim: Simulator, mb: AsyncModbusTcpClient) -> None:
    sim.inject(4, Fault.STUCK_SENSOR)
    try:
        first = await regs(mb, 4)
        pips, thps = set(), set()
        for _ in range(6):
            await asyncio.sleep(0.1)
            r = await regs(mb, 4)
            pips.add(r["pip"])
            thps.add(r["thp"])
        assert pips == {first["pip"]}  # frozen, and no error: quality looks good
        assert len(thps) > 1  # the other instruments keep moving
    finally:
        sim.clear(4)
    await until(lambda: _is(regs(mb, 4), lambda r: r["pip"] != first["pip"]))


async def test_comms_loss_silences_one_unit(sim: Simulator, mb: AsyncModbusTcpClient,
                                            ua_client: tuple[Client, int]) -> None:
    assert not (await mb.write_register(30, int(Fault.COMMS_LOSS), device_id=3)).isError()
    started = time.monotonic()
    with pytest.raises(ModbusIOException):
        await mb.read_holding_registers(0, count=2, device_id=3)
    assert time.monotonic() - started >= 1.0  # no answer at all: the client timed out
    assert len((await mb.read_holding_registers(0, count=2, device_id=5)).registers) == 2
    client, idx = ua_client
    node = client.get_node(ua.NodeId("W3.IntakePressure", idx))

    async def status_is(code: int) -> bool:
        dv = await node.read_data_value(raise_on_bad_status=False)
        return dv.StatusCode is not None and dv.StatusCode.value == code

    await until(lambda: status_is(ua.StatusCodes.BadNoCommunication))
    # the OPC-UA face can clear it; Modbus answers again
    fault = client.get_node(ua.NodeId("W3.Fault", idx))
    await fault.write_value(ua.Variant(0, ua.VariantType.UInt16))
    await until(lambda: status_is(ua.StatusCodes.Good))
    assert (await regs(mb, 3))["fault"] == 0


async def test_gas_lock_makes_current_and_rate_oscillate(sim: Simulator,
                                                         mb: AsyncModbusTcpClient) -> None:
    normal = await regs(mb, 5)
    sim.inject(5, Fault.GAS_LOCK)
    try:
        currents, rates = [], []
        for _ in range(30):
            r = await regs(mb, 5)
            currents.append(r["current"])
            rates.append(r["rate"])
            await asyncio.sleep(0.05)
    finally:
        sim.clear(5)
    assert max(currents) - min(currents) > 0.3 * normal["current"]
    assert max(rates) - min(rates) > 0.3 * normal["rate"]
    assert sum(rates) / len(rates) < normal["rate"]


def test_encode_registers_golden() -> None:
    model_snapshot = Simulator(1).snapshot(1)
    from dataclasses import replace

    s = replace(model_snapshot, intake_pressure=812.5, tubing_pressure=150.0,
                casing_pressure=95.25, motor_current=45.67, frequency=52.5,
                frequency_setpoint=52.5, liquid_rate=1500.0, motor_temperature=-12.3,
                run_hours=70000.9)
    r = encode_registers(s)
    assert r[0:2] == [0x444B, 0x2000]  # 812.5 float32 big-endian words
    assert r[2:4] == [0x4316, 0x0000] and r[4:6] == [0x42BE, 0x8000]
    assert r[6] == 457 and r[7] == 5250 and r[8:10] == [0x44BB, 0x8000]
    assert r[10] == 0xFF85  # -123 as int16
    assert r[11:13] == [0x0001, 0x1170]  # 70000 h as uint32, high word first
    assert r[13] == 0 and r[20] == 5250 and r[30] == 0


def test_thread_variant_serves_and_stops() -> None:
    sim = Simulator(2, tick_s=0.05)
    ports = sim.start_in_thread()
    try:
        with socket.create_connection(("127.0.0.1", ports.modbus), timeout=2):
            pass
        with socket.create_connection(("127.0.0.1", ports.opcua), timeout=2):
            pass
        with pytest.raises(RuntimeError, match="already running"):
            sim.start_in_thread()
    finally:
        sim.stop_thread()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", ports.modbus), timeout=2).close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _default_ctrl_c() -> None:
    """In the child before it starts: Ctrl-C as a terminal gives it, whatever another test
    left in this process (a blocked or ignored SIGINT is inherited by a new program)."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGABRT})
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_campo_simulate_runs_in_the_foreground() -> None:
    mport, oport = _free_port(), _free_port()
    with subprocess.Popen(  # -X faulthandler: SIGABRT prints every thread's stack
            [sys.executable, "-X", "faulthandler", "-m", "engine.cli", "simulate", "--wells",
             "2", "--modbus-port", str(mport), "--opcua-port", str(oport)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            preexec_fn=_default_ctrl_c) as proc:  # noqa: PLW1509 (a test; no threads fork)
        try:
            assert proc.stdout is not None
            lines = []
            end = time.monotonic() + 30
            while time.monotonic() < end:
                line = proc.stdout.readline()
                lines.append(line)
                if "Ctrl-C to stop" in line or not line:
                    break
            assert any(f"opc.tcp://127.0.0.1:{oport}/campo/sim" in x for x in lines), lines
            assert any(f"127.0.0.1:{mport}" in x and "device ids 1..2" in x for x in lines), lines
            with socket.create_connection(("127.0.0.1", mport), timeout=2):
                pass
            proc.send_signal(signal.SIGINT)
            try:  # read what it says while it stops: a full pipe would block it
                rest, _ = proc.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGABRT)
                try:
                    rest, _ = proc.communicate(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    rest, _ = proc.communicate()
                raise AssertionError("campo simulate did not stop on Ctrl-C:\n"
                                     + "".join(lines) + rest) from None
            assert proc.returncode == 0, "".join(lines) + rest
        finally:
            if proc.poll() is None:
                proc.kill()


def test_serve_plugin_starts_in_the_background_and_stops() -> None:
    from engine.scada.simulator import SimulatorPlugin, serve_plugin
    from engine.settings import Settings

    assert serve_plugin(None, None, Settings(simulate=False)) is None
    default = serve_plugin(None, None, Settings(simulate=True))
    assert isinstance(default, SimulatorPlugin) and default.ports == (5020, 4840)
    plugin = SimulatorPlugin(units=2, modbus_port=0, opcua_port=0)
    plugin.start()  # returns at once
    try:
        end = time.monotonic() + 30
        while plugin.simulator.ports.opcua == 0 and time.monotonic() < end:
            time.sleep(0.05)
        with socket.create_connection(("127.0.0.1", plugin.simulator.ports.modbus), timeout=2):
            pass
    finally:
        plugin.stop()
    # a port in use is logged, not raised: the web server keeps serving
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        blocked = SimulatorPlugin(units=1, modbus_port=busy.getsockname()[1], opcua_port=0)
        blocked.start()
        blocked.stop()
        assert blocked.simulator._thread is None
