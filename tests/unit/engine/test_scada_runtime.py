"""The runtime with a fake driver: polling, outages and backoff, queues, writes, threads."""

from __future__ import annotations

import asyncio
import importlib
import logging
import random
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from engine.scada.registry import DriverFactory, DriverRegistry, NoDriver
from engine.scada.runtime import Runtime, WriteError
from engine.scada.scheduler import Backoff
from engine.scada.types import DeviceUnavailable, PointRef, Quality, Reading, WriteFailed
from metamodel.tags import Device, Tag, TagModel, load_tags

GOOD, BAD = Quality.GOOD, Quality.BAD

SITE = """
site: s
devices:
  a: {type: opcua, endpoint: 'opc.tcp://a:4840', timeout: 200ms, reconnect_delay: 50ms,
      reconnect_delay_max: 100ms}
  b: {type: opcua, endpoint: 'opc.tcp://b:4840', timeout: 200ms}
  spare: {type: opcua, endpoint: 'opc.tcp://c:4840', enabled: false}
  bus: {type: mqtt, broker: 'mqtt://x:1883'}
tags:
  a.level: {device: a, node: 'ns=2;s=Level', type: float64, scan_class: fast}
  a.sp: {device: a, node: 'ns=2;s=Sp', type: float64, scan_class: fast, writable: true,
         write_roles: [operator], limits: {min: 40, max: 60}}
  a.run: {device: a, node: 'ns=2;s=Run', type: bool, scan_class: fast, writable: true}
  a.name: {device: a, node: 'ns=2;s=Name', type: string, scan_class: fast,
           writable: true}
  a.ro: {device: a, node: 'ns=2;s=Ro', type: float64, scan_class: fast}
  b.level: {device: b, node: 'ns=2;s=Level', type: float64, scan_class: fast}
  spare.level: {device: spare, node: 'ns=2;s=Level', scan_class: fast, writable: true}
  bus.level: {device: bus, topic: a/b, scan_class: fast}
"""


class FakeDriver:
    """A Driver over a dict of values; can be made unreachable or slow."""

    def __init__(self, device: Device) -> None:
        self.device = device
        self.values: dict[str, Any] = {}
        self.down = False
        self.read_delay = 0.0
        self.connects = 0
        self.busy = 0
        self.overlaps = 0
        self.log: list[str] = []
        self.refuse: str | None = None
        self.lie = False

    async def connect(self) -> None:
        self.connects += 1
        if self.down:
            raise DeviceUnavailable(f"{self.device.name} refused the connection")

    async def read(self, points: Sequence[PointRef]) -> Mapping[str, Reading]:
        self.busy += 1
        self.overlaps += self.busy > 1
        self.log.append("read")
        try:
            if self.read_delay:
                await asyncio.sleep(self.read_delay)
            if self.down:
                raise DeviceUnavailable(f"{self.device.name} went away")
            return {p.tag: Reading(self.values.get(p.tag), GOOD) for p in points
                    if p.tag in self.values}
        finally:
            self.busy -= 1

    async def write(self, point: PointRef, value: Any) -> None:
        self.busy += 1
        self.overlaps += self.busy > 1
        self.log.append(f"write {point.tag}")
        try:
            await asyncio.sleep(0.01)
            if self.refuse:
                raise WriteFailed(self.refuse)
            self.values[point.tag] = value + 1 if self.lie else value
        finally:
            self.busy -= 1

    async def close(self) -> None:
        self.log.append("close")


@pytest.fixture
def model(project) -> TagModel:  # type: ignore[no-untyped-def]
    root: Path = project({"tags/scan_classes.yaml": "scan_classes: {fast: {period: 50ms}}\n",
                          "tags/sites/s.yaml": SITE})
    return load_tags(root)


@pytest.fixture
def fakes() -> dict[str, FakeDriver]:
    return {}


@pytest.fixture
def runtime(model: TagModel, fakes: dict[str, FakeDriver]) -> Runtime:
    registry = DriverRegistry({})

    def create(device: Device) -> FakeDriver:
        fakes[device.name] = FakeDriver(device)
        return fakes[device.name]

    def point(tag: Tag) -> PointRef:
        return PointRef(tag.path, tag.address)
    registry.register("opcua", create, point)
    return Runtime(model, registry=registry, write_timeout=2.0)


async def wait_for(cond: Any, within: float = 3.0) -> None:
    end = time.monotonic() + within
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def test_backoff_grows_with_jitter_and_caps() -> None:
    b = Backoff(0.5, 4.0, rng=random.Random(1))
    delays = [b.fail(0.0) for _ in range(6)]
    caps = [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert all(c / 2 <= d <= c for d, c in zip(delays, caps, strict=True))
    assert len(set(delays)) == 6  # jittered
    assert b.retry_at == pytest.approx(delays[-1])
    b.reset()
    assert b.failures == 0 and b.fail(10.0) <= 0.5


def test_registry_explains_missing_drivers() -> None:
    def missing() -> DriverFactory:  # a driver whose module (or library) is not installed
        module = importlib.import_module("engine.scada.drivers.no_such_module")
        return DriverFactory(module.create, module.point)

    reg = DriverRegistry({"opcua": missing})
    with pytest.raises(NoDriver, match="module engine.scada.drivers.no_such_module"):
        reg.get("opcua")
    with pytest.raises(NoDriver, match="no driver is registered for device type 'zz'"):
        reg.get("zz")


def test_builtin_drivers_load_their_factories() -> None:
    reg = DriverRegistry()
    for device_type in ("modbus_tcp", "modbus_rtu", "opcua", "mqtt"):
        factory = reg.get(device_type)
        assert callable(factory.create) and callable(factory.point), device_type
    assert reg.get("modbus_tcp") is reg.get("modbus_tcp")  # loaded once


async def test_polls_fill_the_table_and_notify(runtime: Runtime,
                                                fakes: dict[str, FakeDriver]) -> None:
    seen: list[str] = []
    runtime.subscribe("s.a.*", lambda vs: seen.extend(v.tag for v in vs))
    await runtime.start()
    try:
        fakes["a"].values.update({"s.a.level": 3.5, "s.a.sp": 45.0})
        await wait_for(lambda: runtime.get("s.a.level").value == 3.5)  # type: ignore[union-attr]
        assert runtime.get("s.a.level").quality is GOOD  # type: ignore[union-attr]
        assert "s.a.level" in seen and "s.b.level" not in seen
        off = runtime.get("s.spare.level")
        assert off is not None and (off.quality, off.reason) == (BAD, "device disabled")
        bus = runtime.get("s.bus.level")
        assert bus is not None and "no driver is registered for device type 'mqtt'" in (
            bus.reason or "")
        assert len(runtime.groups) == 2  # a/fast and b/fast
    finally:
        await runtime.stop()
    assert "close" in fakes["a"].log


async def test_outage_goes_bad_backs_off_and_recovers(
        runtime: Runtime, fakes: dict[str, FakeDriver], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="engine.scada")
    await runtime.start()
    try:
        a = fakes["a"]
        a.values["s.a.level"] = 1.0
        await wait_for(lambda: runtime.get("s.a.level").quality is GOOD)  # type: ignore[union-attr]
        a.down = True
        await wait_for(lambda: runtime.get("s.a.level").quality is BAD)  # type: ignore[union-attr]
        v = runtime.get("s.a.level")
        assert v is not None and v.value == 1.0 and "device offline" in (v.reason or "")
        connects = a.connects
        await asyncio.sleep(0.5)
        # 50 ms first delay, at most 100 ms later: a few attempts, not one per 50 ms scan
        assert 1 <= a.connects - connects <= 8
        b = runtime.get("s.b.level")
        fakes["b"].values["s.b.level"] = 9.0
        await wait_for(lambda: runtime.get("s.b.level").value == 9.0)  # type: ignore[union-attr]
        assert b is not None
        a.down = False
        a.values["s.a.level"] = 2.0
        await wait_for(lambda: runtime.get("s.a.level").value == 2.0)  # type: ignore[union-attr]
        assert runtime.get("s.a.level").quality is GOOD  # type: ignore[union-attr]
    finally:
        await runtime.stop()
    offline = [r for r in caplog.records if "offline" in r.getMessage()]
    recovered = [r for r in caplog.records if "recovered after" in r.getMessage()]
    assert len(offline) == 1 and "device s.a offline" in offline[0].getMessage()
    assert len(recovered) == 1


async def test_a_hung_device_does_not_stall_others(runtime: Runtime,
                                                   fakes: dict[str, FakeDriver]) -> None:
    await runtime.start()
    try:
        fakes["a"].read_delay = 5.0
        for i in range(3):
            fakes["b"].values["s.b.level"] = float(i)
            await wait_for(lambda i=i: runtime.get("s.b.level").value == float(i), 1.0)  # type: ignore[union-attr]
    finally:
        await runtime.stop()


async def test_writes_go_ahead_of_polls_and_never_overlap(runtime: Runtime,
                                                          fakes: dict[str, FakeDriver]) -> None:
    await runtime.start()
    try:
        a = fakes["a"]
        a.values.update({"s.a.sp": 45.0, "s.a.run": False})
        await wait_for(lambda: runtime.get("s.a.sp").quality is GOOD)  # type: ignore[union-attr]
        a.read_delay = 0.03
        await asyncio.sleep(0.2)  # polls queue up behind the slow reads
        a.log.clear()
        results = await asyncio.gather(runtime.write("s.a.sp", 52.5, ["operator"]),
                                       runtime.write("s.a.run", True, {"admin"}))
        assert [r.value for r in results] == [52.5, True]
        assert a.overlaps == 0
        first_write = a.log.index("write s.a.sp")
        assert a.log[first_write + 1] == "read"          # the read-back
        assert a.log[first_write + 2] == "write s.a.run"  # the next write, before queued polls
        assert runtime.get("s.a.sp").value == 52.5  # type: ignore[union-attr]
    finally:
        await runtime.stop()


# The permission, type and limit checks of writes are one table, run against the web side
# and the runtime alike: tests/unit/engine/test_write_policy.py.


async def test_write_failures(runtime: Runtime, fakes: dict[str, FakeDriver]) -> None:
    await runtime.start()
    try:
        a = fakes["a"]
        a.lie = True
        with pytest.raises(WriteError, match="wrote 50 but read back 51") as info:
            await runtime.write("s.a.sp", 50, ["operator"])
        assert info.value.status == 502
        a.lie, a.refuse = False, "illegal data value"
        with pytest.raises(WriteError, match="refused the write: illegal data value"):
            await runtime.write("s.a.sp", 50, ["operator"])
        a.refuse, a.down = None, True
        with pytest.raises(WriteError) as info:
            await runtime.write("s.a.sp", 50, ["operator"])
        assert info.value.status == 503
        with pytest.raises(WriteError, match="device disabled"):
            await runtime.write("s.spare.level", 1.0, ["admin"])
    finally:
        await runtime.stop()


async def test_push_listener(model: TagModel) -> None:
    class Pushing(FakeDriver):
        def add_listener(self, cb: Any) -> None:
            self.cb = cb
    drivers: list[Pushing] = []
    reg = DriverRegistry({})
    reg.register("opcua", lambda d: drivers.append(Pushing(d)) or drivers[-1],
                 lambda t: PointRef(t.path, t.address))
    rt = Runtime(model, registry=reg)
    await rt.start()
    try:
        drivers[0].cb("s.a.level", Reading(7.0, GOOD))
        drivers[0].cb("s.a.ro", Reading(8.0, GOOD))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert rt.get("s.a.level").value == 7.0 and rt.get("s.a.ro").value == 8.0  # type: ignore[union-attr]
    finally:
        await rt.stop()


def test_runtime_in_a_thread(runtime: Runtime, fakes: dict[str, FakeDriver]) -> None:
    handle = runtime.start_in_thread()
    try:
        got: list[float] = []
        handle.subscribe("s.a.sp", lambda vs: got.extend(v.value for v in vs))  # type: ignore[misc]
        fakes["a"].values["s.a.sp"] = 44.0
        end = time.monotonic() + 3
        while handle.snapshot("s.a.sp")["s.a.sp"].value != 44.0 and time.monotonic() < end:
            time.sleep(0.01)
        result = handle.write("s.a.sp", 55.0, {"operator"})
        assert result.value == 55.0 and handle.snapshot()["s.a.sp"].value == 55.0
        assert got[:2] == [44.0, 55.0]
        with pytest.raises(WriteError):
            handle.write("s.a.sp", 99.0, {"operator"})
    finally:
        handle.stop()
    assert handle._thread is not None and not handle._thread.is_alive()
