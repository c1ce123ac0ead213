"""One tag-write policy: the same table answered by the web side and by the runtime.

The web side (``LiveTags.check_write``, what ``POST /api/tags/<path>/write`` calls) and the
runtime (``Runtime.write``, what serves requests arriving over the bus) must refuse the
same writes with the same status and message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from engine.bus import InProcessBus
from engine.bus.policy import Caller, WriteRefused, check_tag_write
from engine.live import LiveTags
from engine.scada.registry import DriverRegistry
from engine.scada.runtime import Runtime, WriteError
from engine.scada.types import PointRef, Quality, Reading
from metamodel.tags import Device, Tag, TagModel, load_tags

SITES = {
    "tags/scan_classes.yaml": "scan_classes: {fast: {period: 50ms}}\n",
    "tags/sites/s.yaml": """
site: s
devices:
  a: {type: opcua, endpoint: 'opc.tcp://a:4840'}
  m: {type: modbus_tcp, host: 127.0.0.1, port: 1}
tags:
  a.sp: {device: a, node: 'ns=2;s=Sp', type: float64, scan_class: fast, writable: true,
         write_roles: [operator], limits: {min: 40, max: 60}}
  a.count: {device: a, node: 'ns=2;s=C', type: int16, scan_class: fast, writable: true,
            write_roles: [operator]}
  a.run: {device: a, node: 'ns=2;s=Run', type: bool, scan_class: fast, writable: true}
  a.name: {device: a, node: 'ns=2;s=Name', type: string, scan_class: fast, writable: true}
  m.freq: {device: m, address: 'hr:40010', type: uint16, scale: {factor: 0.01},
           scan_class: fast, writable: true}
  m.name: {device: m, address: 'hr:40001', type: string, length: 4, scan_class: fast,
           writable: true}
  a.ro: {device: a, node: 'ns=2;s=Ro', type: float64, scan_class: fast}
""",
    "tags/sites/t.yaml": """
site: t
devices:
  b: {type: opcua, endpoint: 'opc.tcp://b:4840'}
tags:
  b.sp: {device: b, node: 'ns=2;s=Sp', type: float64, scan_class: fast, writable: true,
         write_roles: [operator]}
""",
}

OP_S = Caller(frozenset({"operator"}), frozenset({"s"}))

#: tag, value, caller, status, text in the message (None: allowed)
TABLE: list[tuple[str, Any, Caller, int | None, str]] = [
    ("s.a.sp", 52.5, OP_S, None, ""),
    ("s.zz", 1, Caller(frozenset({"admin"})), 404, "unknown tag 's.zz'"),
    ("t.b.sp", 1.0, OP_S, 404, "unknown tag 't.b.sp'"),  # another site reads as unknown
    ("t.b.sp", 1.0, Caller(frozenset({"operator"}), frozenset({"t"})), None, ""),
    ("s.a.ro", 1.0, Caller(frozenset({"admin"})), 403, "tag 's.a.ro' is not writable"),
    ("s.a.sp", 50, Caller(frozenset({"viewer"})), 403, "needs one of the roles: operator"),
    ("s.a.sp", 70, OP_S, 422, "70 is above the write limit 60"),
    ("s.a.sp", 10, OP_S, 422, "10 is below the write limit 40"),
    ("s.a.sp", "50", OP_S, 422, "expected a number"),
    ("s.a.sp", True, OP_S, 422, "expected a number"),
    ("s.a.sp", float("nan"), OP_S, 422, "expected a finite number"),
    ("s.a.run", 1, Caller(frozenset({"admin"})), 422, "expected true or false"),
    ("s.a.name", 5, Caller(frozenset({"admin"})), 422, "expected a string"),
    ("s.m.name", "abcde", Caller(frozenset({"admin"})), 422, "longer than 4 characters"),
    ("s.m.name", "abcd", Caller(frozenset({"admin"})), None, ""),
]


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> TagModel:
    root = tmp_path_factory.mktemp("policy")
    for rel, text in SITES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return load_tags(Path(root))


class Echo:
    """A device that holds what is written (reads back exactly)."""

    def __init__(self, device: Device) -> None:
        self.values: dict[str, Any] = {}

    async def connect(self) -> None:
        return None

    async def read(self, points: Sequence[PointRef]) -> Mapping[str, Reading]:
        return {p.tag: Reading(self.values[p.tag], Quality.GOOD) for p in points
                if p.tag in self.values}

    async def write(self, point: PointRef, value: Any) -> None:
        if isinstance(value, tuple):  # Modbus registers are read back as wire bytes
            value = b"".join(r.to_bytes(2, "big") for r in value)
        self.values[point.tag] = value

    async def close(self) -> None:
        return None


def _web(model: TagModel, tag: str, value: Any, caller: Caller) -> tuple[int, str]:
    live = LiveTags(model, InProcessBus())
    try:
        live.check_write(live.get(tag), tag, value, caller)
    except WriteRefused as err:
        assert err.field == ("value" if err.status == 422 else None)
        return err.status, err.message
    return 200, ""


def _runtime(model: TagModel, tag: str, value: Any, caller: Caller) -> tuple[int, str]:
    registry = DriverRegistry({})
    registry.register("opcua", Echo, lambda t: PointRef(t.path, t.address))
    registry.register("modbus_tcp", Echo, lambda t: PointRef(t.path, t.address))

    async def go() -> tuple[int, str]:
        rt = Runtime(model, registry=registry, write_timeout=2.0)
        await rt.start()
        try:
            await rt.write(tag, value, caller)
        except WriteError as err:
            return err.status, err.message
        finally:
            await rt.stop()
        return 200, ""
    return asyncio.run(go())


@pytest.mark.parametrize("caller_side", [_web, _runtime], ids=["web", "runtime"])
@pytest.mark.parametrize("tag,value,caller,status,text", TABLE)
def test_one_table_both_callers(model: TagModel, caller_side: Any, tag: str, value: Any,
                                caller: Caller, status: int | None, text: str) -> None:
    got_status, message = caller_side(model, tag, value, caller)
    assert got_status == (status or 200)
    assert text in message


def test_the_policy_is_a_pure_function(model: TagModel) -> None:
    tag: Tag = model.tags["s.a.sp"]
    assert check_tag_write(tag, tag.path, 45, OP_S) == 45
    with pytest.raises(WriteRefused) as info:
        check_tag_write(tag, tag.path, 45, Caller(frozenset({"operator"}), frozenset()))
    assert info.value.status == 404


def test_caller_round_trips_through_write_meta() -> None:
    c = Caller(frozenset({"operator", "viewer"}), frozenset({"s"}), "ana", 7)
    assert Caller.from_meta(c.to_meta()) == c
    assert Caller.from_meta({"sites": []}).may_see_site("s") is False
    assert Caller.from_meta({}).may_see_site("s") is True  # a peer older than sites
    assert Caller(frozenset()).may_see_site("anything")  # the default is every site


def test_a_rounded_write_says_so(model: TagModel) -> None:
    """52.555 on a tag with 0.01 resolution: the device holds 52.56 and the answer says it."""
    registry = DriverRegistry({})
    registry.register("opcua", Echo, lambda t: PointRef(t.path, t.address))
    registry.register("modbus_tcp", Echo, lambda t: PointRef(t.path, t.address))

    async def go() -> list[Any]:
        rt = Runtime(model, registry=registry, write_timeout=2.0)
        await rt.start()
        try:
            return [await rt.write("s.m.freq", v, ["admin"]) for v in (52.555, 52.5, 0.3)]
        finally:
            await rt.stop()
    rounded, exact, float_noise = asyncio.run(go())
    assert rounded.value == pytest.approx(52.56) and rounded.rounded is True
    assert rounded.note is not None and "52.56" in rounded.note and "0.01" in rounded.note
    assert exact.value == pytest.approx(52.5) and exact.rounded is False and exact.note is None
    assert float_noise.rounded is False  # 30 * 0.01 is not exactly 0.3, but is no rounding
