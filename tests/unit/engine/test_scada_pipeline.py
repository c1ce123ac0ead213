"""The pipeline: decode, scale, clamp, quality, deadband, timestamps, subscribers."""

from __future__ import annotations

import datetime as dt
import struct
from pathlib import Path

import pytest

from engine.scada.pipeline import Pipeline
from engine.scada.types import Quality, Reading
from metamodel.tags import TagModel, load_tags

GOOD, BAD, UNCERTAIN = Quality.GOOD, Quality.BAD, Quality.UNCERTAIN
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@pytest.fixture
def model(project) -> TagModel:  # type: ignore[no-untyped-def]
    root: Path = project({
        "tags/scan_classes.yaml": "scan_classes: {fast: {period: 1s}}\n",
        "tags/sites/s.yaml": """
site: s
devices:
  d: {type: modbus_tcp, host: x}
  ua: {type: opcua, endpoint: 'opc.tcp://x:4840'}
tags:
  level: {device: d, address: hr:40001, type: uint16, scan_class: fast, deadband: 2%,
          scale: {raw: [0, 10000], eng: [0, 100], clamp: true}}
  temp: {device: d, address: hr:40002, type: int16, scale: {factor: 0.1}, scan_class: fast}
  flow: {device: d, address: hr:40003, type: float32, deadband: 0.5, scan_class: fast}
  run: {device: d, address: coil:00001, scan_class: fast}
  name: {device: d, address: hr:40010, type: string(4), scan_class: fast}
  alarm: {device: d, address: hr:40020.2, scan_class: fast}
  native: {device: ua, node: 'ns=2;s=X', scan_class: fast, deadband: 1}
  count: {device: ua, node: 'ns=2;s=Y', type: int32, scan_class: fast}
""",
    })
    return load_tags(root)


def regs(*values: int) -> bytes:
    return struct.pack(f">{len(values)}H", *values)


def ok(raw: object) -> Reading:
    return Reading(raw, GOOD)


def test_decode_scale_and_types(model: TagModel) -> None:
    p = Pipeline(model.tags.values(), T0)
    out = p.process({
        "s.level": ok(regs(2500)), "s.temp": ok(regs(0xFF83)),
        "s.flow": ok(struct.pack(">f", 12.5)), "s.run": ok(True),
        "s.name": ok(regs(0x5731, 0)), "s.alarm": ok(regs(0x0004)),
        "s.native": ok(3.5), "s.count": ok(7.0),
    }, T0)
    got = {v.tag: v.value for v in out}
    assert got == {"s.level": 25.0, "s.temp": pytest.approx(-12.5), "s.flow": 12.5,
                   "s.run": True, "s.name": "W1", "s.alarm": True, "s.native": 3.5,
                   "s.count": 7}
    assert isinstance(got["s.count"], int)
    assert all(v.quality is GOOD and v.ts == T0 for v in out)
    assert p.values["s.level"].value == 25.0


def test_initial_table_is_bad_not_read(model: TagModel) -> None:
    p = Pipeline(model.tags.values(), T0)
    assert p.snapshot()["s.flow"].quality is BAD
    assert p.snapshot()["s.flow"].reason == "not read yet"
    assert set(p.snapshot("s.*")) == set(model.tags)


def test_deadband_absolute_and_percent(model: TagModel) -> None:
    p = Pipeline(model.tags.values(), T0)
    f = struct.pack
    assert len(p.process({"s.flow": ok(f(">f", 10.0)), "s.level": ok(regs(5000))})) == 2
    assert p.process({"s.flow": ok(f(">f", 10.4))}) == []            # < 0.5
    assert [v.value for v in p.process({"s.flow": ok(f(">f", 10.5))})] == [10.5]
    assert p.process({"s.flow": ok(f(">f", 10.5))}) == []            # unchanged
    assert p.process({"s.level": ok(regs(5150))}) == []               # 1.5 < 2% of 100
    assert [v.value for v in p.process({"s.level": ok(regs(5200))})] == [52.0]
    # deadband compares with the last published value, so a slow drift is still seen
    for raw in (5300, 5350):
        p.process({"s.level": ok(regs(raw))})
    assert p.values["s.level"].value == 52.0
    assert [v.value for v in p.process({"s.level": ok(regs(5400))})] == [54.0]


def test_bad_quality_keeps_value_and_publishes_once(model: TagModel) -> None:
    p = Pipeline(model.tags.values(), T0)
    p.process({"s.flow": ok(struct.pack(">f", 1.0))})
    bad = Reading(None, BAD, None, "unit 1 did not answer")
    out = p.process({"s.flow": bad})
    assert [(v.value, v.quality, v.reason) for v in out] == [(1.0, BAD, "unit 1 did not answer")]
    assert p.process({"s.flow": bad}) == []
    out = p.process({"s.flow": ok(struct.pack(">f", 1.0))})
    assert [(v.value, v.quality, v.reason) for v in out] == [(1.0, GOOD, None)]


def test_clamp_is_uncertain_and_nan_is_bad(model: TagModel) -> None:
    p = Pipeline(model.tags.values(), T0)
    out = p.process({"s.level": ok(regs(12000)), "s.flow": ok(struct.pack(">f", float("nan")))})
    by = {v.tag: v for v in out}
    assert (by["s.level"].value, by["s.level"].quality) == (100.0, UNCERTAIN)
    assert by["s.level"].reason == "above the engineering range"
    assert by["s.flow"].quality is BAD and "not a finite number" in (by["s.flow"].reason or "")


def test_decode_error_is_bad(model: TagModel) -> None:
    p = Pipeline(model.tags.values(), T0)
    out = p.process({"s.flow": ok(b"\x00")})
    assert out[0].quality is BAD and out[0].reason.startswith("cannot decode")  # type: ignore[union-attr]
    out = p.process({"s.count": ok("abc")})
    assert out[0].quality is BAD


def test_source_timestamp_wins(model: TagModel) -> None:
    p = Pipeline(model.tags.values(), T0)
    src = dt.datetime(2025, 5, 5, tzinfo=dt.UTC)
    out = p.process({"s.native": Reading(1.0, GOOD, src), "s.count": ok(1)}, T0)
    assert {v.tag: v.ts for v in out} == {"s.native": src, "s.count": T0}


def test_untyped_source_changing_type_does_not_break(model: TagModel) -> None:
    p = Pipeline(model.tags.values(), T0)
    p.process({"s.native": ok(1.0)})
    assert [v.value for v in p.process({"s.native": ok("on")})] == ["on"]
    assert p.process({"s.native": ok("on")}) == []


def test_subscribers_get_batches_of_matching_changes(model: TagModel) -> None:
    p = Pipeline(model.tags.values(), T0)
    got: list[list[str]] = []
    sub = p.subscribe("s.*", lambda vs: got.append(sorted(v.tag for v in vs)))
    few: list[list[str]] = []
    p.subscribe(["s.run", "s.unknown"], lambda vs: few.append([v.tag for v in vs]))

    def broken(values: object) -> None:
        raise RuntimeError("subscriber bug")
    p.subscribe("**", broken)
    p.process({"s.run": ok(True), "s.flow": ok(struct.pack(">f", 2.0))})
    p.process({"s.flow": ok(struct.pack(">f", 2.0))})  # no change: no call
    assert got == [["s.flow", "s.run"]] and few == [["s.run"]]
    sub.cancel()
    p.process({"s.run": ok(False)})
    assert got == [["s.flow", "s.run"]] and few == [["s.run"], ["s.run"]]


def test_fail_marks_tags_bad(model: TagModel) -> None:
    p = Pipeline(model.tags.values(), T0)
    out = p.fail(["s.flow", "s.run"], "device offline: refused")
    assert {v.reason for v in out} == {"device offline: refused"}
