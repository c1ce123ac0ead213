"""Benchmark: 2,000 Modbus tags over one simulated device, against a hand-written loop.

Generates 2,000 tags of mixed types (int16 to float64, strings, coils, discrete inputs,
bits of registers; several byte/word orders, some scaled, some with deadbands) with random
holes between them, as a site YAML in a temporary project, and serves the matching
registers from a pymodbus TCP server started here (values filled by
``convert_to_registers``). Then, on one core where the OS allows it:

- requests per scan: the runtime's Modbus driver over the loaded tags, against the optimum
  computed by an independent greedy count (maximal runs; optimal for the request count);
  ``RESULT modbus_request_ratio`` must be 1.0;
- scan time: the driver's ``read`` (plan cached, readings built per tag), against a
  hand-written pymodbus loop reading the same blocks and slicing the registers, same
  connection setup; ``RESULT modbus_scan_ratio`` = driver / baseline, goal <= 1.2;
- pipeline: decode -> scale -> quality -> deadband -> table on readings that change every
  pass; ``RESULT pipeline_updates_per_s``, goal >= 200,000; the baseline decodes the same
  registers with pymodbus' ``convert_from_registers`` per tag.

Run: ``python bench/modbus.py`` (no arguments; about 20 s).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import statistics
import struct
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pymodbus.client import AsyncModbusTcpClient, ModbusTcpClient
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from engine.scada.drivers.modbus import ModbusDriver, point
from engine.scada.pipeline import Pipeline
from engine.scada.planner import Limits, Request, plan_tags
from engine.scada.types import Quality, Reading
from metamodel.tags import ModbusAddress, Tag, load_tags

TAGS = 2000
SCANS = 30
PASSES = 60
MAX_GAP = 4
SEED = 20261130
DT = ModbusTcpClient.DATATYPE
KINDS = [  # (type, registers, weight)
    ("uint16", 1, 4), ("int16", 1, 3), ("float32", 2, 6), ("int32", 2, 2), ("uint32", 2, 2),
    ("float64", 4, 1), ("int64", 4, 1), ("string", 4, 1), ("bit", 1, 1), ("coil", 0, 2),
    ("di", 0, 1),
]


def pin_one_core() -> None:
    """Run on one CPU when the OS lets us (Linux)."""
    if hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
        except OSError:
            pass


def generate(rng: random.Random) -> tuple[str, list[int], list[int], list[bool], list[bool]]:
    """Site YAML and the server's holding/input registers, coils and discrete inputs."""
    hr, ir = [0] * 30000, [0] * 2000
    co, di = [False] * 4000, [False] * 4000
    lines = []
    h = i = c = d = 0
    bit_reg: int | None = None
    bit_no = 0
    kinds = [k for k in KINDS for _ in range(k[2])]
    for n in range(TAGS):
        kind, width, _ = rng.choice(kinds)
        name = f"t{n:04d}"
        opts = ""
        if kind == "coil":
            c += rng.choice([0, 0, 1, 3, 20])
            co[c] = rng.random() < 0.5
            lines.append(f"  {name}: {{address: 'coil:{c + 1:05d}'}}")
            c += 1
            continue
        if kind == "di":
            d += rng.choice([0, 0, 2, 40])
            di[d] = rng.random() < 0.5
            lines.append(f"  {name}: {{address: 'di:1{d + 1:04d}'}}")
            d += 1
            continue
        if kind == "bit":
            if bit_reg is None or bit_no > 15:
                h += rng.choice([0, 0, 0, 1, 2, 3, 8])
                bit_reg, bit_no = h, 0
                hr[h] = rng.getrandbits(16)
                h += 1
            lines.append(f"  {name}: {{function: hr, offset: {bit_reg}, bit: {bit_no}}}")
            bit_no += rng.choice([1, 2])
            continue
        table_ir = kind in ("float32", "int16") and rng.random() < 0.2
        gap = rng.choice([0, 0, 0, 1, 2, 3, 4, 6, 10])
        if table_ir:
            i += gap
            offset, regs = i, ir
            i += width
            fn = "ir"
        else:
            h += gap
            offset, regs = h, hr
            h += width
            fn = "hr"
        order = rng.choice(["big/big", "big/big", "big/little", "little/little", "little/big"])
        bo, wo = order.split("/")
        if kind == "string":
            value: Any = f"S{n:05d}"[:8]
            words = ModbusTcpClient.convert_to_registers(value, DT.STRING)
            words += [0] * (4 - len(words))
            opts = ", type: string(8)"
        else:
            if kind.startswith("float"):
                value = rng.uniform(-1e4, 1e4)
            elif kind.startswith("u"):
                value = rng.randrange(0, 2 ** (16 * width))
            else:
                value = rng.randrange(-(2 ** (16 * width - 1)), 2 ** (16 * width - 1))
            words = ModbusTcpClient.convert_to_registers(
                value, getattr(DT, kind.upper()), word_order=wo)  # type: ignore[arg-type]
            opts = f", type: {kind}, byte_order: {bo}"
            if width > 1:
                opts += f", word_order: {wo}"
            if kind in ("uint16", "int16") and rng.random() < 0.5:
                opts += ", scale: {factor: 0.1}"
            if rng.random() < 0.3:
                opts += ", deadband: 0.5"
        if bo == "little":
            words = [((w & 0xFF) << 8) | (w >> 8) for w in words]
        regs[offset:offset + width] = words
        lines.append(f"  {name}: {{function: {fn}, offset: {offset}{opts}}}")
    site = ("site: bench\nscan_class: fast\nparameters:\n  port: {type: int, default: 502}\n"
            "devices:\n  plc: {type: modbus_tcp, host: 127.0.0.1, port: '${port}', "
            f"timeout: 2s, max_gap: {MAX_GAP}}}\ntags:\n"
            + "\n".join(line.replace("{", "{device: plc, ", 1) for line in lines) + "\n")
    return site, hr[:h + 1], ir[:i + 1], co[:c + 16], di[:d + 16]


def greedy_optimum(tags: list[Tag], limits: Limits) -> int:
    """Fewest requests by the greedy method (maximal runs), independent of the planner."""
    groups: dict[tuple[int, str], list[ModbusAddress]] = {}
    for t in tags:
        groups.setdefault((t.modbus.unit_id, t.modbus.function), []).append(t.modbus)
    total = 0
    for (_, fn), addrs in groups.items():
        bits = fn in ("coil", "discrete_input")
        limit = limits.max_bits if bits else limits.max_registers
        gap = limits.max_bit_gap if bits else limits.max_gap
        addrs.sort(key=lambda a: (a.offset, a.end))
        start = end = None
        for a in addrs:
            if start is not None and end is not None and a.offset - end <= gap and \
                    max(end, a.end) - start <= limit:
                end = max(end, a.end)
                continue
            total += 1
            start, end = a.offset, a.end
    return total


async def hand_loop(client: AsyncModbusTcpClient, requests: list[Request]) -> dict[str, Any]:
    """What one would write by hand: read each block, slice each tag's registers."""
    out: dict[str, Any] = {}
    for r in requests:
        if r.function == "coil":
            rr = await client.read_coils(r.start, count=r.count, device_id=r.unit_id)
            bits = rr.bits
            for s in r.slots:
                out[s.tag] = bits[s.at]
        elif r.function == "discrete_input":
            rr = await client.read_discrete_inputs(r.start, count=r.count, device_id=r.unit_id)
            bits = rr.bits
            for s in r.slots:
                out[s.tag] = bits[s.at]
        else:
            read = client.read_holding_registers if r.function == "holding_register" \
                else client.read_input_registers
            rr = await read(r.start, count=r.count, device_id=r.unit_id)
            regs = rr.registers
            for s in r.slots:
                out[s.tag] = regs[s.at:s.at + s.count]
    return out


async def scans(root: Path) -> tuple[list[Tag], dict[str, Reading], dict[str, float]]:
    rng = random.Random(SEED)
    site, hr, ir, co, di = generate(rng)
    (root / "tags/sites").mkdir(parents=True)
    (root / "tags/scan_classes.yaml").write_text("scan_classes: {fast: {period: 1s}}\n")
    (root / "tags/sites/bench.yaml").write_text(site)
    device = SimDevice(1, simdata=(
        [SimData(0, values=co, datatype=DataType.BITS)],
        [SimData(0, values=di, datatype=DataType.BITS)],
        [SimData(0, values=hr, datatype=DataType.REGISTERS)],
        [SimData(0, values=ir, datatype=DataType.REGISTERS)]))
    server = ModbusTcpServer([device], address=("127.0.0.1", 0))
    await server.serve_forever(background=True)
    port = server.transport.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    model = load_tags(root, params={"bench.port": port})
    tags = list(model.tags.values())
    dev = model.devices["bench.plc"]
    limits = Limits.of(dev)
    plan = plan_tags(tags, limits)
    optimum = greedy_optimum(tags, limits)
    driver = ModbusDriver(dev)
    await driver.connect()
    points = [point(t) for t in tags]
    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0,
                                  reconnect_delay=0)
    await client.connect()
    ours: list[float] = []
    base: list[float] = []
    readings: dict[str, Reading] = {}
    await driver.read(points)
    await hand_loop(client, plan)
    sent0 = driver.requests_sent
    for _ in range(SCANS):  # interleaved, so both see the same machine load
        t0 = time.perf_counter()
        readings = dict(await driver.read(points))
        ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        await hand_loop(client, plan)
        base.append(time.perf_counter() - t0)
    per_scan = (driver.requests_sent - sent0) / SCANS
    bad = sum(r.quality is not Quality.GOOD for r in readings.values())
    client.close()
    await driver.close()
    await server.shutdown()
    figures = {"requests": per_scan, "optimum": optimum, "planned": len(plan),
               "ours": statistics.median(ours), "base": statistics.median(base), "bad": bad}
    return tags, readings, figures


def pipeline_rate(tags: list[Tag], readings: dict[str, Reading]) -> tuple[float, float]:
    """Updates/s through the pipeline, and pymodbus-per-tag decoding as the baseline."""
    other = {}
    for path, r in readings.items():  # a second snapshot where every value differs
        v = r.value
        if isinstance(v, bool):
            other[path] = Reading(not v, Quality.GOOD)
        else:
            b = bytearray(v)
            b[-1] ^= 0x5A
            b[0] ^= 0x01
            other[path] = Reading(bytes(b), Quality.GOOD)
    pipe = Pipeline(tags)
    batches = [readings, other]
    pipe.process(readings)
    n = 0
    t0 = time.perf_counter()
    for k in range(PASSES):
        n += len(batches[k % 2])
        pipe.process(batches[k % 2])
    ours = n / (time.perf_counter() - t0)
    by_path = {t.path: t for t in tags}
    kinds = {"int16": DT.INT16, "uint16": DT.UINT16, "int32": DT.INT32, "uint32": DT.UINT32,
             "int64": DT.INT64, "uint64": DT.UINT64, "float32": DT.FLOAT32,
             "float64": DT.FLOAT64, "string": DT.STRING}
    convert = ModbusTcpClient.convert_from_registers
    n = 0
    t0 = time.perf_counter()
    for k in range(PASSES // 4):
        for path, r in batches[k % 2].items():
            t = by_path[path]
            if isinstance(r.value, bool):
                continue
            regs = list(struct.unpack(f">{len(r.value) // 2}H", r.value))
            if t.data_type == "bool":
                continue
            convert(regs, kinds[t.data_type or "uint16"], word_order=t.word_order)  # type: ignore[arg-type]
            n += 1
    base = n / (time.perf_counter() - t0)
    return ours, base


def main() -> int:
    pin_one_core()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        tags, readings, f = asyncio.run(scans(Path(tmp)))
    ours, base = pipeline_rate(tags, readings)
    print(f"{len(tags)} tags, {f['planned']} planned requests per scan "
          f"(max_gap {MAX_GAP}), {f['bad']} bad readings")
    print(f"requests per scan: driver {f['requests']:.1f}, optimum {f['optimum']}")
    print(f"scan time (median of {SCANS}): driver {f['ours'] * 1000:.2f} ms, "
          f"hand-written pymodbus loop {f['base'] * 1000:.2f} ms")
    print(f"pipeline: {ours:,.0f} updates/s; baseline pymodbus convert_from_registers "
          f"per tag (decode only): {base:,.0f} values/s")
    print(f"RESULT modbus_request_ratio {f['requests'] / f['optimum']:.3f}")
    print(f"RESULT modbus_scan_ratio {f['ours'] / f['base']:.3f}")
    print(f"RESULT pipeline_updates_per_s {ours:.0f}")
    ok = f["requests"] == f["optimum"] and f["bad"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
