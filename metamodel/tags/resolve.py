"""Turn one :class:`~metamodel.tags.spec.TagSpec` into a :class:`~metamodel.tags.model.Tag`.

The same template tag is resolved once per instance. Problems that do not depend on the
instance (a float32 on a coil, a word order on an int16) carry the same location and text
for every instance and are reported once; the loader drops repeats.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import Location, Problems, expected_one_of
from ..source import Document, dotted
from .addressing import (
    BIT_TABLES,
    LAST_OFFSET,
    SHORT,
    TABLES,
    WRITABLE_TABLES,
    AddressError,
    ModbusAddress,
    MqttAddress,
    check_path,
    check_topic,
    parse_modbus,
    parse_node,
    width,
)
from .model import Binding, Device, Scaling, ScanClass, Tag
from .params import UNCLOSED_HINT, fill, placeholders, unclosed
from .spec import DEFAULT_WRITE_ROLES, MqttSpec, OpcUaSpec, TagSpec

_TEXT_FIELDS = ("node", "topic", "path", "timestamp_path", "metric", "description")
_MODBUS_FIELDS = ("address", "function", "offset", "bit", "unit_id", "length")
_ONE_REGISTER = ("int16", "uint16", "bool", "string")


@dataclass
class TagContext:
    """What one tag needs from around it: its device, instance and where it was written."""

    path: str
    site: str
    device: Device
    doc: Document
    #: key path of the tag in ``doc`` (``("tags", "pip")``)
    key: tuple[Any, ...]
    scan_classes: Mapping[str, ScanClass]
    problems: Problems
    #: template parameter values (None: a site tag, already substituted)
    values: Mapping[str, str] | None = None
    unit_id: int | None = None
    base: int = 0
    #: scan class from the instance and the template, with where each was written
    scan_fallbacks: tuple[tuple[str | None, Location | None, str], ...] = ()
    roles: frozenset[str] | None = None
    instance: str | None = None
    template: str | None = None
    binding: Binding | None = None
    #: scan classes that exist but are broken (reported already: no "unknown" follow-on)
    broken_scan_classes: frozenset[str] = frozenset()

    def at(self, *field: Any) -> Location:
        return self.doc.where(self.key + field)

    def dotted(self, *field: Any) -> str:
        return dotted(self.key + field)

    def add(self, field: tuple[Any, ...], message: str, hint: str | None = None) -> None:
        self.problems.add(self.at(*field), self.dotted(*field), message, hint)


def _texts(spec: TagSpec, ctx: TagContext) -> dict[str, str | None] | None:
    out: dict[str, str | None] = {}
    ok = True
    for name in _TEXT_FIELDS:
        text = getattr(spec, name)
        if text is None or ctx.values is None:
            out[name] = text
            continue
        bad = unclosed(text)
        if bad is not None:
            ctx.add((name,), f"unclosed placeholder '{bad}'", UNCLOSED_HINT)
            ok = False
            continue
        for ph in placeholders(text):
            if ph not in ctx.values:
                ctx.add((name,), f"unknown parameter '{ph}'",
                        expected_one_of(ph, ctx.values) if ctx.values else
                        "declare it under the template's 'parameters:'")
                ok = False
        out[name] = fill(text, ctx.values)
    return out if ok else None


def _foreign(spec: TagSpec, ctx: TagContext, fields: tuple[str, ...], what: str) -> bool:
    bad = [f for f in fields if getattr(spec, f) is not None]
    for f in bad:
        ctx.add((f,), f"'{f}' is for {what}, but device '{ctx.device.name}' is "
                f"{ctx.device.type}", f"remove '{f}', or bind the tag to a {what} device")
    return not bad


def _modbus(spec: TagSpec, ctx: TagContext) -> tuple[ModbusAddress, str] | None:
    dev = ctx.device.spec
    if not _foreign(spec, ctx, ("node", "topic", "path", "timestamp_path", "metric"),
                    "OPC-UA or MQTT"):
        return None
    span: int | None = None
    bit = spec.bit
    if spec.address is not None:
        if spec.function is not None or spec.offset is not None:
            ctx.add(("address",), "give either 'address' or 'function' and 'offset', not both")
            return None
        try:
            table, offset, span, addr_bit = parse_modbus(spec.address)
        except AddressError as exc:
            ctx.add(("address",), exc.message, exc.hint)
            return None
        if addr_bit is not None and bit is not None:
            ctx.add(("bit",), f"the address '{spec.address}' already names bit {addr_bit}")
            return None
        bit = addr_bit if addr_bit is not None else bit
        where: tuple[str, ...] = ("address",)
    elif spec.function is not None:
        if spec.offset is None:
            ctx.add(("function",), "'function' needs a zero-based 'offset'",
                    "offset: 0 is the first register (40001 in Modicon notation)")
            return None
        table, offset, where = SHORT.get(spec.function, spec.function), spec.offset, ("offset",)
    else:
        ctx.add((), "the tag has no address",
                "write address: hr:40001 (Modicon, 1-based) or function: holding_register "
                "and offset: 0")
        return None
    if table in BIT_TABLES and bit is not None:
        ctx.add(("bit",), f"a {table.replace('_', ' ')} is a single bit already")
        return None
    dtype = spec.type
    if dtype is None:
        if table in BIT_TABLES or bit is not None:
            dtype = "bool"
        else:
            ctx.add((), "missing required key 'type'",
                    "registers hold int16, uint16, int32, uint32, int64, uint64, float32, "
                    "float64 or string(n); write for example type: float32")
            return None
    if table in BIT_TABLES and dtype != "bool":
        ctx.add(("type",), f"type '{dtype}' needs registers, but a {table.replace('_', ' ')} "
                "holds one bit", "read it from a holding or input register, or use type: bool")
        return None
    if table not in BIT_TABLES and dtype == "bool" and bit is None:
        ctx.add(("type",), f"a bool in a {table.replace('_', ' ')} needs a bit number",
                "write address: hr:40011.3 or bit: 3 (0 is the least significant bit)")
        return None
    if bit is not None and dtype != "bool":
        ctx.add(("type",), f"bit {bit} of a register is a bool, not {dtype}")
        return None
    if (dtype == "string") != (spec.length is not None):
        if dtype == "string":
            ctx.add(("type",), "a string needs a length in characters",
                    "write type: string(20), or length: 20")
        else:
            ctx.add(("length",), f"'length' is for strings, not {dtype}")
        return None
    if table in BIT_TABLES and (spec.byte_order or spec.word_order):
        key = "byte_order" if spec.byte_order else "word_order"
        ctx.add((key,), f"'{key}' has no meaning for a single bit")
        return None
    if spec.word_order is not None and dtype in _ONE_REGISTER:
        what = f"{dtype} (one register)" if dtype != "string" else "a string (bytes in order)"
        ctx.add(("word_order",), f"'word_order' has no effect on {what}",
                "word order applies to 32- and 64-bit types; remove it")
        return None
    count = 1 if table in BIT_TABLES else width(dtype, spec.length)
    if bit is not None:
        count = 1
    if span is not None and span != count:
        unit = "bits" if table in BIT_TABLES else "registers"
        ctx.add(("address",), f"{dtype} takes {count} {unit} but '{spec.address}' spans {span}",
                "fix the span or the type")
        return None
    unit_id = spec.unit_id if spec.unit_id is not None else (
        ctx.unit_id if ctx.unit_id is not None else dev.unit_id)  # type: ignore[union-attr]
    units = getattr(dev, "units", [])
    if units and unit_id not in units:  # the instance's unit id is checked by the loader
        ctx.add(("unit_id",), f"unit id {unit_id} is not on line '{ctx.device.name}' "
                f"(units {', '.join(map(str, units))})",
                "add it to the device's 'units:' list or fix the unit id")
        return None
    start = offset + ctx.base
    if start + count - 1 > LAST_OFFSET:
        first = ModbusAddress(table, unit_id, offset, count)
        based = f" + base {ctx.base}" if ctx.base else ""
        units = "bits" if table in BIT_TABLES else "registers"
        ctx.add(where, f"{first.modicon()}{based} ({count} {units}) runs past the last "
                f"address {TABLES[table][0]}65536 (offset {LAST_OFFSET})")
        return None
    return ModbusAddress(table, unit_id, start, count, bit), dtype


def _scaling(spec: TagSpec, dtype: str | None, ctx: TagContext) -> tuple[bool, Scaling | None]:
    sc = spec.scale
    if sc is None:
        return True, None
    if dtype in ("bool", "string"):
        ctx.add(("scale",), f"a {dtype} cannot be scaled", "remove 'scale'")
        return False, None
    if sc.raw is not None and sc.eng is not None:
        (r0, r1), (e0, e1) = sc.raw, sc.eng
        factor = (e1 - e0) / (r1 - r0)
        return True, Scaling(factor, e0 - r0 * factor, (min(e0, e1), max(e0, e1)), sc.clamp)
    return True, Scaling(sc.factor if sc.factor is not None else 1.0, sc.offset or 0.0)


def _deadband(spec: TagSpec, dtype: str | None, rng: tuple[float, float] | None,
              scaling: Scaling | None, ctx: TagContext) -> float | None:
    db = spec.deadband
    if db is None:
        return 0.0
    if dtype in ("bool", "string"):
        ctx.add(("deadband",), f"a {dtype} has no deadband", "remove 'deadband'")
        return None
    if isinstance(db, str):
        pct = float(db.strip().rstrip("%"))
        span = (rng[1] - rng[0]) if rng else (scaling.span if scaling else None)
        if not span:
            ctx.add(("deadband",), f"deadband '{db.strip()}' is a share of the span, but the "
                    "tag has none", "give 'range: [lo, hi]', scale 'raw' and 'eng' ranges, "
                    "or an absolute deadband")
            return None
        return pct / 100.0 * span
    return float(db)


def _scan(spec: TagSpec, ctx: TagContext) -> ScanClass | None:
    chain: list[tuple[str | None, Location | None, str]] = [
        (spec.scan_class, ctx.at("scan_class") if spec.scan_class else None,
         ctx.dotted("scan_class")), *ctx.scan_fallbacks]
    for name, where, path in chain:
        if name is None:
            continue
        if name in ctx.scan_classes:
            return ctx.scan_classes[name]
        if name in ctx.broken_scan_classes:
            return None
        assert where is not None
        ctx.problems.add(where, path, f"unknown scan class '{name}'",
                         expected_one_of(name, ctx.scan_classes) if ctx.scan_classes else
                         "define scan classes in tags/scan_classes.yaml")
        return None
    ctx.add((), "the tag has no scan class",
            "give 'scan_class:' on the tag, its template or its instance")
    return None


def _writes(spec: TagSpec, dtype: str | None, ctx: TagContext,
            table: str | None) -> tuple[bool, frozenset[str], float | None, float | None]:
    ok = True
    if not spec.writable:
        for key in ("write_roles", "limits"):
            if getattr(spec, key) is not None:
                ctx.add((key,), f"'{key}' is given but the tag is not writable",
                        "add writable: true")
                ok = False
        return ok, frozenset(), None, None
    if table is not None and table not in WRITABLE_TABLES:
        ctx.add(("writable",), f"{table.replace('_', ' ')}s are read-only",
                "write to a holding register or a coil")
        ok = False
    roles = spec.write_roles if spec.write_roles is not None else list(DEFAULT_WRITE_ROLES)
    if ctx.roles is not None:
        for i, r in enumerate(spec.write_roles or []):
            if r not in ctx.roles:
                ctx.add(("write_roles", i), f"unknown role '{r}'", expected_one_of(r, ctx.roles))
                ok = False
    lo = hi = None
    if spec.limits is not None:
        if dtype in ("bool", "string"):
            ctx.add(("limits",), f"a {dtype} has no limits", "remove 'limits'")
            ok = False
        lo, hi = spec.limits.min, spec.limits.max
    return ok, frozenset(roles), lo, hi


def resolve_tag(spec: TagSpec, ctx: TagContext) -> Tag | None:
    """The resolved tag, or None after adding its problems to ``ctx.problems``."""
    texts = _texts(spec, ctx)
    if texts is None:
        return None
    dev = ctx.device.spec
    table: str | None = None
    address: Any
    dtype: str | None = spec.type
    if ctx.device.type in ("modbus_tcp", "modbus_rtu"):
        got = _modbus(spec, ctx)
        if got is None:
            return None
        address, dtype = got
        table = address.function
    elif isinstance(dev, OpcUaSpec):
        if not _foreign(spec, ctx, _MODBUS_FIELDS + ("byte_order", "word_order"), "Modbus") or \
                not _foreign(spec, ctx, ("topic", "path", "timestamp_path", "metric"), "MQTT"):
            return None
        if texts["node"] is None:
            ctx.add((), "the tag has no OPC-UA node", "write node: ns=2;s=Name or "
                    "nsu=urn:your:namespace;s=Name")
            return None
        try:
            address = parse_node(texts["node"], dev.namespace)
        except AddressError as exc:
            ctx.add(("node",), exc.message, exc.hint)
            return None
    else:
        assert isinstance(dev, MqttSpec)
        if not _foreign(spec, ctx, _MODBUS_FIELDS + ("byte_order", "word_order"), "Modbus") or \
                not _foreign(spec, ctx, ("node",), "OPC-UA"):
            return None
        address = _mqtt(texts, dev, ctx)
        if address is None:
            return None
    ok, scaling = _scaling(spec, dtype, ctx)
    rng = None
    if spec.range is not None:
        if spec.range[0] >= spec.range[1]:
            ctx.add(("range",), f"range [{spec.range[0]}, {spec.range[1]}] is empty or reversed",
                    "write range: [low, high]")
            ok = False
        else:
            rng = (spec.range[0], spec.range[1])
    deadband = _deadband(spec, dtype, rng, scaling, ctx)
    scan = _scan(spec, ctx)
    w_ok, roles, lo, hi = _writes(spec, dtype, ctx, table)
    if not ok or not w_ok or deadband is None or scan is None:
        return None
    byte_order = str(spec.byte_order or getattr(dev, "byte_order", "big"))
    word_order = str(spec.word_order or getattr(dev, "word_order", "big"))
    return Tag(
        path=ctx.path, site=ctx.site, device=ctx.device.qualname, device_type=ctx.device.type,
        address=address, data_type=dtype, length=spec.length,
        byte_order=byte_order, word_order=word_order,
        scaling=scaling, unit=spec.unit, label=_label(spec), description=texts["description"],
        range=rng, deadband=deadband, scan_class=scan.name, period=scan.period,
        writable=spec.writable, write_roles=roles, write_min=lo, write_max=hi,
        location=ctx.doc.where_key(ctx.key), instance=ctx.instance, template=ctx.template,
        binding=ctx.binding,
    )


def _label(spec: TagSpec) -> Any:
    from ..spec import labels_of

    return labels_of(spec.label, "x") if spec.label is not None else None


def _mqtt(texts: Mapping[str, str | None], dev: MqttSpec, ctx: TagContext) -> MqttAddress | None:
    if dev.format == "sparkplug_b":
        for key in ("topic", "path", "timestamp_path"):
            if texts[key] is not None:
                ctx.add((key,), f"'{key}' is for plain JSON; a Sparkplug B tag names its 'metric'")
                return None
        if texts["metric"] is None:
            ctx.add((), "the tag has no Sparkplug B metric", "write metric: Pump/Frequency")
            return None
        sp = dev.sparkplug
        assert sp is not None
        return MqttAddress(metric=texts["metric"], group=sp.group, edge_node=sp.edge_node,
                           device=sp.device)
    if texts["metric"] is not None:
        ctx.add(("metric",), "'metric' is for Sparkplug B devices (format: sparkplug_b)")
        return None
    topic = texts["topic"]
    if topic is None:
        ctx.add((), "the tag has no MQTT topic", "write topic: site/pad7/w1 and path: pip")
        return None
    checks: list[tuple[str, Callable[[str], None], str | None]] = [
        ("topic", check_topic, topic), ("path", check_path, texts["path"]),
        ("timestamp_path", check_path, texts["timestamp_path"])]
    for key, check, value in checks:
        if value is None:
            continue
        try:
            check(value)
        except AddressError as exc:
            ctx.add((key,), exc.message, exc.hint)
            return None
    return MqttAddress(topic=topic, path=texts["path"], timestamp_path=texts["timestamp_path"])

