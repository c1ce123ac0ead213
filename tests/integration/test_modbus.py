"""The Modbus driver and the runtime against a real pymodbus TCP server in the test process."""

from __future__ import annotations

import asyncio
import math
import struct
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from support.modbus import Tables, TcpServer, encode

from engine.scada.drivers.modbus import ModbusDriver, point
from engine.scada.planner import Limits, plan_tags
from engine.scada.runtime import Runtime, WriteError
from engine.scada.types import DeviceUnavailable, Quality, TagValue
from metamodel.tags import TagModel, load_tags

pytestmark = pytest.mark.integration
GOOD, BAD, UNCERTAIN = Quality.GOOD, Quality.BAD, Quality.UNCERTAIN
ORDERS = {"ABCD": ("big", "big"), "CDAB": ("big", "little"),
          "BADC": ("little", "big"), "DCBA": ("little", "little")}

#: (tag, type, order, value): every type in every order that applies to it
TYPED: list[tuple[str, str, str, Any]] = [
    ("i16", "int16", "ABCD", -125), ("i16_le", "int16", "BADC", -32768),
    ("u16", "uint16", "ABCD", 43981), ("u16_le", "uint16", "BADC", 65535),
    *[(f"i32_{o.lower()}", "int32", o, -123456789) for o in ORDERS],
    *[(f"u32_{o.lower()}", "uint32", o, 3735928559) for o in ORDERS],
    *[(f"f32_{o.lower()}", "float32", o, -1234.5677490234375) for o in ORDERS],
    *[(f"i64_{o.lower()}", "int64", o, -(2**62) + 12345) for o in ORDERS],
    *[(f"u64_{o.lower()}", "uint64", o, 2**64 - 2) for o in ORDERS],
    *[(f"f64_{o.lower()}", "float64", o, math.pi * 1e10) for o in ORDERS],
]
WIDTH = {"int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "float32": 2, "int64": 4,
         "uint64": 4, "float64": 4}


def build() -> tuple[str, Tables]:
    """The site YAML and the server's unit 1, laid out with a few holes."""
    t = Tables(hr=[0] * 200)
    lines = []
    offset = 0
    for i, (name, dtype, order, value) in enumerate(TYPED):
        bo, wo = ORDERS[order]
        t.hr[offset:offset + WIDTH[dtype]] = encode(value, dtype, bo, wo)
        wo_key = f", word_order: {wo}" if WIDTH[dtype] > 1 else ""
        lines.append(f"  {name}: {{device: plc, function: hr, offset: {offset}, type: {dtype}, "
                     f"byte_order: {bo}{wo_key}}}")
        offset += WIDTH[dtype] + (3 if i % 5 == 4 else 0)  # holes now and then
    t.hr[150:154] = encode("CAMPO-01", "string", length=8)
    t.hr[154:156] = encode("AB", "string", "little", length=3)
    t.hr[160] = 5000                       # scaled 0..10000 -> 0..100
    t.hr[161] = encode(-125, "int16")[0]   # x0.1
    t.hr[162] = 12000                      # above the raw range: clamped
    t.hr[163] = 0b1010                     # bits 1 and 3 set
    t.hr[170] = 4500                       # setpoint x0.01, writable
    t.hr[171:173] = encode(10.0, "float32")
    t.ir[0:2] = encode(98.5, "float32", "big", "little")
    t.co[0:3] = [True, False, True]
    t.di[0:2] = [False, True]
    site = "site: s\nscan_class: fast\ndevices:\n" \
           "  plc: {type: modbus_tcp, host: 127.0.0.1, port: '${port}', " \
           "timeout: 300ms, max_gap: 4, reconnect_delay: 50ms, reconnect_delay_max: 200ms}\n" \
           "parameters:\n  port: {type: int, default: 502}\n" \
           "tags:\n" + "\n".join(lines) + """
  name: {device: plc, address: hr:40151, type: string(8)}
  name_le: {device: plc, address: hr:40155, type: string(3), byte_order: little}
  level: {device: plc, address: hr:40161, type: uint16, scale: {raw: [0, 10000], eng: [0, 100]}}
  temp: {device: plc, address: hr:40162, type: int16, scale: {factor: 0.1}}
  high: {device: plc, address: hr:40163, type: uint16,
         scale: {raw: [0, 10000], eng: [0, 100], clamp: true}}
  flag1: {device: plc, address: hr:40164.1}
  flag2: {device: plc, address: hr:40164.2}
  flag3: {device: plc, function: holding_register, offset: 163, bit: 3}
  setpoint: {device: plc, address: hr:40171, type: uint16, scale: {factor: 0.01},
             writable: true, write_roles: [operator], limits: {min: 40, max: 60}}
  flow: {device: plc, address: hr:40172, type: float32, deadband: 0.5, writable: true}
  inflow: {device: plc, address: ir:30001, type: float32, word_order: little}
  run: {device: plc, address: coil:00001, writable: true}
  stop: {device: plc, address: coil:00002}
  spare: {device: plc, address: coil:00003}
  door: {device: plc, address: di:10002}
  missing: {device: plc, address: hr:49001, type: uint16}
  gone: {device: plc, address: hr:40001, unit_id: 9, type: uint16}
"""
    return site, t


@pytest.fixture
async def pad(project: Callable[[dict[str, str]], Path]
              ) -> AsyncIterator[tuple[TcpServer, TagModel]]:
    site, unit1 = build()
    server = TcpServer({1: unit1, 9: Tables(dead=True)})
    await server.start()
    root = project({"tags/scan_classes.yaml": "scan_classes: {fast: {period: 100ms}}\n",
                    "tags/sites/s.yaml": site})
    model = load_tags(root, params={"s.port": server.port})
    yield server, model
    await server.stop()


async def until(cond: Callable[[], bool], within: float = 5.0) -> None:
    end = time.monotonic() + within
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def value(rt: Runtime, name: str) -> TagValue:
    v = rt.get(f"s.{name}")
    assert v is not None
    return v


async def test_every_type_and_order_decodes(pad: tuple[TcpServer, TagModel]) -> None:
    server, model = pad
    rt = Runtime(model)
    await rt.start()
    try:
        await until(lambda: all(value(rt, n).quality is GOOD for n, *_ in TYPED))
        for name, dtype, order, expected in TYPED:
            got = value(rt, name).value
            if dtype.startswith("float"):
                assert got == pytest.approx(expected, rel=1e-12), (name, order)
            else:
                assert got == expected, (name, order)
        assert value(rt, "name").value == "CAMPO-01"
        assert value(rt, "name_le").value == "AB"
        assert value(rt, "inflow").value == pytest.approx(98.5)
        assert [value(rt, n).value for n in ("run", "stop", "spare", "door")] == [
            True, False, True, True]
        assert [value(rt, n).value for n in ("flag1", "flag2", "flag3")] == [True, False, True]
    finally:
        await rt.stop()


async def test_scaling_clamp_and_errors(pad: tuple[TcpServer, TagModel]) -> None:
    server, model = pad
    rt = Runtime(model)
    await rt.start()
    try:
        await until(lambda: value(rt, "level").quality is GOOD and
                    value(rt, "missing").quality is BAD and value(rt, "gone").quality is BAD)
        assert value(rt, "level").value == pytest.approx(50.0)
        assert value(rt, "temp").value == pytest.approx(-12.5)
        high = value(rt, "high")
        assert (high.value, high.quality) == (100.0, UNCERTAIN)
        assert value(rt, "missing").reason == \
            "fc3 unit 1 hr:49001 +1: exception 2 (illegal data address)"
        assert value(rt, "gone").reason == "unit 9 did not answer within 0.3 s"
        await asyncio.sleep(0.3)
        assert value(rt, "level").quality is GOOD  # unit 1 unaffected by the dead unit 9
    finally:
        await rt.stop()


async def test_deadband(pad: tuple[TcpServer, TagModel]) -> None:
    server, model = pad
    rt = Runtime(model)
    seen: list[float] = []
    rt.subscribe("s.flow", lambda vs: seen.extend(v.value for v in vs))  # type: ignore[misc]
    await rt.start()
    try:
        await until(lambda: seen == [10.0])
        await server.set_registers(1, 171, encode(10.3, "float32"))
        await asyncio.sleep(0.35)  # three scans
        assert seen == [10.0] and value(rt, "flow").value == 10.0
        await server.set_registers(1, 171, encode(10.75, "float32"))
        await until(lambda: len(seen) == 2)
        assert seen[1] == pytest.approx(10.75)
    finally:
        await rt.stop()


async def test_writes_with_read_back(pad: tuple[TcpServer, TagModel]) -> None:
    server, model = pad
    rt = Runtime(model)
    await rt.start()
    try:
        await until(lambda: value(rt, "setpoint").quality is GOOD)
        r = await rt.write("s.setpoint", 52.5, ["operator"])
        assert (r.value, r.quality) == (pytest.approx(52.5), GOOD)
        assert await server.registers(1, 170, 1) == [5250]
        r = await rt.write("s.flow", 12.25, ["admin"])
        assert r.value == 12.25 and await server.registers(1, 171, 2) == encode(12.25, "float32")
        r = await rt.write("s.run", False, ["operator"])
        assert r.value is False and (await server.registers(1, 0, 1, fc=1))[0] is False
        assert value(rt, "run").value is False  # the table follows the read-back at once
        with pytest.raises(WriteError) as info:
            await rt.write("s.setpoint", 61, ["operator"])
        assert info.value.status == 422 and await server.registers(1, 170, 1) == [5250]
        with pytest.raises(WriteError) as info:
            await rt.write("s.setpoint", 45, ["viewer"])
        assert info.value.status == 403
    finally:
        await rt.stop()


async def test_write_encodings_on_the_wire(pad: tuple[TcpServer, TagModel]) -> None:
    """Writes in every order put exactly pymodbus' registers (bytes swapped) on the server."""
    server, model = pad
    driver = ModbusDriver(model.devices["s.plc"])
    await driver.connect()
    try:
        from engine.scada.codec import compile_encoder
        for name, dtype, order, v in TYPED:
            tag = model.tags[f"s.{name}"]
            await driver.write(point(tag), compile_encoder(tag)(v))
            bo, wo = ORDERS[order]
            got = await server.registers(1, tag.modbus.offset, tag.modbus.count)
            assert got == encode(v, dtype, bo, wo), name
    finally:
        await driver.close()


async def test_requests_per_scan_are_the_plan(pad: tuple[TcpServer, TagModel]) -> None:
    server, model = pad
    device = model.devices["s.plc"]
    tags = [t for t in model.tags_of("s.plc") if t.modbus.unit_id == 1 and t.path != "s.missing"]
    plan = plan_tags(tags, Limits.of(device))
    driver = ModbusDriver(device)
    await driver.connect()
    try:
        points = [point(t) for t in tags]
        for _ in range(3):
            readings = await driver.read(points)
            assert all(r.quality is GOOD for r in readings.values())
        assert driver.requests_sent == 3 * len(plan)
        # 4 tables; the holes of 3 registers are within max_gap 4, so few requests
        assert len(plan) <= 6
        raw = readings["s.f32_abcd"].value
        assert isinstance(raw, bytes) and struct.unpack(">f", raw)[0] == pytest.approx(
            -1234.5677490234375)
    finally:
        await driver.close()


async def test_outage_and_recovery(pad: tuple[TcpServer, TagModel]) -> None:
    server, model = pad
    rt = Runtime(model)
    await rt.start()
    try:
        await until(lambda: value(rt, "u16").quality is GOOD)
        await server.stop()
        t0 = time.monotonic()
        await until(lambda: value(rt, "u16").quality is BAD, within=2.0)
        assert time.monotonic() - t0 <= 2 * 0.1 + 0.35  # two scans (+ one timeout)
        assert "device offline" in (value(rt, "u16").reason or "")
        assert value(rt, "u16").value == 43981  # the last good value is kept
        await asyncio.sleep(0.3)
        await server.start()  # same port
        await until(lambda: value(rt, "u16").quality is GOOD, within=3.0)
        assert value(rt, "f64_abcd").quality is GOOD
    finally:
        await rt.stop()


async def test_unreachable_device_raises_device_unavailable(
        pad: tuple[TcpServer, TagModel]) -> None:
    server, model = pad
    await server.stop()
    driver = ModbusDriver(model.devices["s.plc"])
    with pytest.raises(DeviceUnavailable, match="cannot connect to 127.0.0.1"):
        await driver.connect()
    await driver.close()


def test_plan_measures_the_round_trip(project: Callable[[dict[str, str]], Path],
                                      capsys: pytest.CaptureFixture[str]) -> None:
    """``campo tags plan --measure`` times real requests (server in a background loop)."""
    import threading

    from engine.cli import main

    site, unit1 = build()
    server = TcpServer({1: unit1})
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(server.start(), loop).result(5)
    try:
        root = project({"tags/scan_classes.yaml": "scan_classes: {fast: {period: 100ms}}\n",
                        "tags/sites/s.yaml": site})
        code = main(["tags", "plan", "--measure", "--project", str(root),
                     "--set", f"s.port={server.port}"])
        out = capsys.readouterr().out
        assert code == 0
        assert f"127.0.0.1:{server.port}" in out and "ms measured)" in out
        rtt = float(out.split("round trip ")[1].split(" ms")[0])
        assert 0 < rtt < 50
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


async def test_concurrency_spreads_requests_over_connections(
        project: Callable[[dict[str, str]], Path]) -> None:
    site, unit1 = build()
    unit1.latency = 0.05  # every request takes 50 ms on the device
    server = TcpServer({1: unit1})
    await server.start()
    try:
        times = {}
        for n in (1, 3):
            root = project({"tags/scan_classes.yaml": "scan_classes: {fast: {period: 1s}}\n",
                            "tags/sites/s.yaml": site.replace(
                                "timeout: 300ms", f"concurrency: {n}, timeout: 300ms")})
            model = load_tags(root, params={"s.port": server.port})
            tags = [t for t in model.tags_of("s.plc")
                    if t.modbus.unit_id == 1 and t.path != "s.missing"]
            plan = plan_tags(tags, Limits.of(model.devices["s.plc"]))
            driver = ModbusDriver(model.devices["s.plc"])
            await driver.connect()
            try:
                assert len(driver._clients) == n
                points = [point(t) for t in tags]
                spent = []
                for _ in range(2):
                    t0 = time.monotonic()
                    readings = await driver.read(points)
                    spent.append(time.monotonic() - t0)
                times[n] = min(spent)
                assert driver.requests_sent == 2 * len(plan)
                assert all(r.quality is GOOD for r in readings.values())
                assert struct.unpack(">f", readings["s.f32_abcd"].value)[0] == pytest.approx(
                    -1234.5677490234375)
            finally:
                await driver.close()
        assert len(plan) >= 4
        assert times[3] < times[1] * 0.7  # requests overlapped on three connections
    finally:
        await server.stop()
