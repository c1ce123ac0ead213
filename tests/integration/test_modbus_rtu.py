"""Modbus RTU over a pseudo-terminal pair: a pymodbus serial server and our driver."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from support.modbus import PtyLink, Tables, encode, serial_server

from engine.scada.drivers.modbus import ModbusDriver, point
from engine.scada.planner import Limits, plan_tags
from engine.scada.runtime import Runtime
from engine.scada.types import Quality
from metamodel.tags import TagModel, load_tags

pytestmark = pytest.mark.integration
GOOD, BAD = Quality.GOOD, Quality.BAD

TEMPLATE = """
template: meter
scan_class: fast
tags:
  flow: {address: hr:40001, type: float32, word_order: little}
  total: {address: hr:40011, type: uint32}
  temp: {address: ir:30001, type: int16, scale: {factor: 0.1}}
  alarm: {address: coil:00001}
  setpoint: {address: hr:40021, type: uint16, writable: true}
"""


def unit(n: int) -> Tables:
    t = Tables()
    t.hr[0:2] = encode(10.5 * n, "float32", "big", "little")
    t.hr[10:12] = encode(100000 + n, "uint32")
    t.hr[20] = 7
    t.ir[0] = encode(-25 * n, "int16")[0]
    t.co[0] = n % 2 == 1
    return t


@pytest.fixture
async def line(project: Callable[[dict[str, str]], Path]) -> AsyncIterator[TagModel]:
    link = PtyLink()
    link.start()
    server = await serial_server(link.server_path, {1: unit(1), 2: unit(2),
                                                    3: Tables(dead=True)})
    root = project({
        "tags/scan_classes.yaml": "scan_classes: {fast: {period: 200ms}}\n",
        "tags/templates/meter.yaml": TEMPLATE,
        "tags/sites/s.yaml": f"""
site: s
devices:
  line: {{type: modbus_rtu, port: '{link.client_path}', baudrate: 19200, timeout: 250ms,
          max_gap: 10, units: [1, 2, 3], reconnect_delay: 50ms}}
instances:
  m1: {{template: meter, device: line, unit_id: 1}}
  m2: {{template: meter, device: line, unit_id: 2}}
  m3: {{template: meter, device: line, unit_id: 3}}
""",
    })
    try:
        yield load_tags(root)
    finally:
        await server.shutdown()
        link.close()


async def test_rtu_reads_every_unit_and_a_dead_unit_costs_one_timeout(
        line: TagModel, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    device = line.devices["s.line"]
    tags = line.tags_of("s.line")
    plan = plan_tags(tags, Limits.of(device))
    assert len(plan) == 9  # per unit: holding registers, input registers, coils
    driver = ModbusDriver(device)
    await driver.connect()
    try:
        points = [point(t) for t in tags]
        await driver.read(points)  # warm up the line
        sent = driver.requests_sent
        t0 = time.monotonic()
        readings = await driver.read(points)
        elapsed = time.monotonic() - t0
        # units 1 and 2 answer their 3 requests each; unit 3 gets one request, times out,
        # and its other two requests are skipped for this scan
        assert driver.requests_sent - sent == 7
        assert 0.25 <= elapsed < 0.25 + 0.5
        assert readings["s.m3.flow"].quality is BAD
        assert readings["s.m3.temp"].reason == "unit 3 did not answer within 0.25 s"
        assert all(readings[f"s.m{n}.{t}"].quality is GOOD
                   for n in (1, 2) for t in ("flow", "total", "temp", "alarm"))
        # the silent unit is in the readings, not an ERROR line from pymodbus every scan
        assert not [r for r in caplog.records if r.name.startswith("pymodbus")
                    and r.levelno >= logging.ERROR]
        await driver.read(points)
        silent = [r.getMessage() for r in caplog.records if "not answering" in r.getMessage()]
        assert silent == ["device s.line: unit 3 not answering: unit 3 did not answer "
                          "within 0.25 s"]  # once, not once per scan
    finally:
        await driver.close()


async def test_rtu_through_the_runtime(line: TagModel) -> None:
    rt = Runtime(line)
    await rt.start()
    try:
        ready = asyncio.Event()
        rt.subscribe("s.m2.alarm", lambda values: ready.set())
        await asyncio.wait_for(ready.wait(), 5)
        got = {p: v.value for p, v in rt.snapshot("s.m?.*").items() if v.quality is GOOD}
        assert got["s.m1.flow"] == pytest.approx(10.5) and got["s.m2.flow"] == 21.0
        assert got["s.m1.total"] == 100001 and got["s.m2.total"] == 100002
        assert got["s.m1.temp"] == pytest.approx(-2.5) and got["s.m2.temp"] == -5.0
        assert (got["s.m1.alarm"], got["s.m2.alarm"]) == (True, False)
        assert rt.get("s.m3.flow").quality is BAD  # type: ignore[union-attr]
        result = await rt.write("s.m2.setpoint", 1234, ["operator"])
        assert result.value == 1234
    finally:
        await rt.stop()
