"""Sinks: queued off the scan path, with a backlog figure; a stuck sink never stops a scan."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from engine.scada.registry import DriverRegistry
from engine.scada.runtime import Runtime
from engine.scada.sinks import QueuedSink, Sink
from engine.scada.types import PointRef, Quality, Reading, TagValue
from metamodel.tags import Device, TagModel, load_tags

SITE = """
site: s
devices:
  a: {type: opcua, endpoint: 'opc.tcp://a:4840'}
tags:
  a.level: {device: a, node: 'ns=2;s=Level', type: float64, scan_class: fast}
  a.flow: {device: a, node: 'ns=2;s=Flow', type: float64, scan_class: fast}
"""


class Counting:
    """A device whose values change on every read."""

    def __init__(self, device: Device) -> None:
        self.reads = 0

    async def connect(self) -> None:
        return None

    async def read(self, points: Sequence[PointRef]) -> Mapping[str, Reading]:
        self.reads += 1
        return {p.tag: Reading(float(self.reads), Quality.GOOD) for p in points}

    async def write(self, point: PointRef, value: Any) -> None:
        return None

    async def close(self) -> None:
        return None


class Recording:
    """A sink that records what it gets, on which thread, and can be held or made to fail."""

    def __init__(self, name: str = "rec") -> None:
        self.name = name
        self.got: list[TagValue] = []
        self.threads: set[int] = set()
        self.gate = threading.Event()
        self.gate.set()
        self.fail = False
        self.started = self.stopped = False

    async def start(self) -> None:
        self.started = True

    def publish(self, batch: Sequence[TagValue]) -> None:
        self.threads.add(threading.get_ident())
        self.gate.wait(30)
        if self.fail:
            raise ConnectionError("upstream gone")
        self.got.extend(batch)

    async def stop(self) -> None:
        self.stopped = True


@pytest.fixture
def model(project: Any) -> TagModel:
    root: Path = project({"tags/scan_classes.yaml": "scan_classes: {fast: {period: 20ms}}\n",
                          "tags/sites/s.yaml": SITE})
    return load_tags(root)


def _runtime(model: TagModel) -> tuple[Runtime, list[Counting]]:
    drivers: list[Counting] = []
    registry = DriverRegistry({})
    registry.register("opcua", lambda d: drivers.append(Counting(d)) or drivers[-1],
                      lambda t: PointRef(t.path, t.address))
    return Runtime(model, registry=registry), drivers


async def _until(cond: Any, within: float = 10.0) -> None:
    end = time.monotonic() + within
    while not cond():
        assert time.monotonic() < end, "condition not met in time"
        await asyncio.sleep(0.01)


def test_the_protocol_is_what_a_sink_implements() -> None:
    assert isinstance(Recording(), Sink)


async def test_a_stuck_sink_never_stops_the_scans(model: TagModel) -> None:
    runtime, drivers = _runtime(model)
    stuck = Recording("stuck")
    quick = Recording("quick")
    q_stuck = runtime.add_sink(stuck)
    runtime.add_sink(quick)
    await runtime.start()
    try:
        stuck.gate.clear()  # its publish blocks: its thread waits, not the runtime's loop
        await _until(lambda: bool(stuck.threads))
        reads = drivers[0].reads
        await _until(lambda: drivers[0].reads >= reads + 10)  # scans go on meanwhile
        await _until(lambda: q_stuck.backlog > 0)
        assert q_stuck.stats().lag_seconds > 0
        assert quick.got and quick.got[-1].value >= reads + 5  # the other sink keeps up
        assert threading.get_ident() not in stuck.threads
        stuck.gate.set()
        await _until(lambda: q_stuck.backlog == 0)
    finally:
        await runtime.stop()
    assert stuck.started and stuck.stopped
    # in order and complete: the first values are the live table's initial state
    assert [v.value for v in stuck.got[:2]] == [None, None]
    levels = [v.value for v in stuck.got if v.tag == "s.a.level" and v.value is not None]
    assert levels == sorted(levels) and len(levels) == len(set(levels))
    assert q_stuck.stats().published == len(stuck.got) and q_stuck.stats().dropped == 0


async def test_task_sinks_run_on_the_loop_and_failures_are_counted(model: TagModel) -> None:
    runtime, drivers = _runtime(model)
    sink = Recording("sparkplug")
    queued = runtime.add_sink(sink, thread=False)
    await runtime.start()
    try:
        await _until(lambda: len(sink.got) > 4)
        assert sink.threads == {threading.get_ident()}  # the loop's thread (this test's)
        sink.fail = True
        await _until(lambda: queued.failures >= 2)
        assert queued.stats().last_error == "publish: upstream gone"
        reads = drivers[0].reads
        await _until(lambda: drivers[0].reads > reads + 3)
        sink.fail = False
        n = len(sink.got)
        await _until(lambda: len(sink.got) > n)
    finally:
        await runtime.stop()


async def test_the_backlog_is_bounded(model: TagModel) -> None:
    sink = Recording()
    queued = QueuedSink(sink, max_backlog=10)
    sink.gate.clear()
    await queued.start()
    tv = TagValue("s.a.level", 1.0, Quality.GOOD, dt.datetime.now(dt.UTC))
    queued.offer([tv])
    await asyncio.sleep(0.1)  # the worker took the first batch and waits at the gate
    for _ in range(30):
        queued.offer([tv, tv])
    assert queued.backlog <= 10 and queued.dropped == 60 - queued.backlog
    sink.gate.set()
    await queued.stop()
    assert queued.backlog == 0 and len(sink.got) == 1 + (60 - queued.dropped)


async def test_a_sink_attached_while_running_gets_the_table_first(model: TagModel) -> None:
    runtime, _ = _runtime(model)
    await runtime.start()
    try:
        await _until(lambda: runtime.get("s.a.level").quality is Quality.GOOD)  # type: ignore[union-attr]
        late = Recording("late")
        await runtime.attach_sink(late)
        await _until(lambda: len(late.got) > 4)
        assert {v.tag for v in late.got[:2]} == {"s.a.level", "s.a.flow"}
        assert all(v.quality is Quality.GOOD for v in late.got[:2])
        assert [s.name for s in runtime.sink_stats()] == ["late"]
        with pytest.raises(ValueError, match="already registered"):
            await runtime.attach_sink(Recording("late"))
    finally:
        await runtime.stop()
