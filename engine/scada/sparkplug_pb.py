"""Sparkplug B payloads: the protobuf (proto2) wire format of ``sparkplug_b.proto``, by hand.

Only what an edge node and a host need: the payload (timestamp, metrics, seq, uuid, body),
metrics with scalar values, and property sets (for the ``Quality`` property). Data sets,
templates, metadata and extensions are skipped when decoding and never encoded. Field
numbers and types follow Eclipse Tahu's ``sparkplug_b.proto``; signed integers travel as
two's complement in the unsigned ``int_value``/``long_value`` fields (Sparkplug 3.0).
Golden byte tests in ``tests/unit/engine/test_sparkplug_pb.py`` pin the encoding.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field
from typing import Any


class DataType(enum.IntEnum):
    """Sparkplug B metric data types."""

    Unknown = 0
    Int8 = 1
    Int16 = 2
    Int32 = 3
    Int64 = 4
    UInt8 = 5
    UInt16 = 6
    UInt32 = 7
    UInt64 = 8
    Float = 9
    Double = 10
    Boolean = 11
    String = 12
    DateTime = 13
    Text = 14
    UUID = 15
    DataSet = 16
    Bytes = 17
    File = 18
    Template = 19
    PropertySet = 20
    PropertySetList = 21


_INT32 = {DataType.Int8, DataType.Int16, DataType.Int32, DataType.UInt8, DataType.UInt16,
          DataType.UInt32}
_INT64 = {DataType.Int64, DataType.UInt64, DataType.DateTime}
_STRING = {DataType.String, DataType.Text, DataType.UUID}
_BYTES = {DataType.Bytes, DataType.File}
_SIGNED_BITS = {DataType.Int8: 8, DataType.Int16: 16, DataType.Int32: 32, DataType.Int64: 64}
_RANGES = {DataType.Int8: (-(1 << 7), (1 << 7) - 1), DataType.Int16: (-(1 << 15), (1 << 15) - 1),
           DataType.Int32: (-(1 << 31), (1 << 31) - 1), DataType.Int64: (-(1 << 63), (1 << 63) - 1),
           DataType.UInt8: (0, 255), DataType.UInt16: (0, 65535),
           DataType.UInt32: (0, (1 << 32) - 1),
           DataType.UInt64: (0, (1 << 64) - 1), DataType.DateTime: (0, (1 << 64) - 1)}


class DecodeError(ValueError):
    """The bytes are not a valid Sparkplug B payload."""


@dataclass
class PropertyValue:
    """One value of a property set (``type`` is a :class:`DataType`)."""

    type: int
    value: Any = None


@dataclass
class Metric:
    """One metric. ``datatype`` is required in births and may be omitted in data messages."""

    name: str | None = None
    alias: int | None = None
    timestamp: int | None = None
    datatype: int | None = None
    value: Any = None
    is_null: bool = False
    is_historical: bool = False
    is_transient: bool = False
    properties: dict[str, PropertyValue] = field(default_factory=dict)


@dataclass
class Payload:
    """A Sparkplug B payload (timestamps in ms since the epoch, UTC)."""

    timestamp: int | None = None
    metrics: list[Metric] = field(default_factory=list)
    seq: int | None = None
    uuid: str | None = None
    body: bytes | None = None


# --------------------------------------------------------------------------- encoding
def _varint(n: int) -> bytes:
    if n < 0:
        raise ValueError(f"varint fields are unsigned here, got {n}")
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _key(field_no: int, wire: int) -> bytes:
    return _varint((field_no << 3) | wire)


def _len_field(field_no: int, data: bytes) -> bytes:
    return _key(field_no, 2) + _varint(len(data)) + data


def _value_fields(dtype: int, value: Any, base: int) -> bytes:
    """The oneof value field; ``base`` is the field number of ``int_value`` (10 or 3)."""
    dt = DataType(dtype)
    if dt in _INT32 or dt in _INT64:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{dt.name} needs an integer, got {value!r}")
        lo, hi = _RANGES[dt]
        if not lo <= value <= hi:
            raise ValueError(f"{value} does not fit {dt.name} ({lo}..{hi})")
        if dt in _INT32:
            return _key(base, 0) + _varint(value & 0xFFFFFFFF)
        return _key(base + 1, 0) + _varint(value & 0xFFFFFFFFFFFFFFFF)
    if dt is DataType.Float:
        return _key(base + 2, 5) + struct.pack("<f", float(value))
    if dt is DataType.Double:
        return _key(base + 3, 1) + struct.pack("<d", float(value))
    if dt is DataType.Boolean:
        return _key(base + 4, 0) + _varint(1 if value else 0)
    if dt in _STRING:
        return _len_field(base + 5, str(value).encode("utf-8"))
    if dt in _BYTES and base == 10:
        return _len_field(16, bytes(value))
    raise ValueError(f"encoding values of type {dt.name} is not supported")


def _encode_properties(props: dict[str, PropertyValue]) -> bytes:
    out = bytearray()
    for key in props:
        out += _len_field(1, key.encode("utf-8"))
    for pv in props.values():
        body = _key(1, 0) + _varint(pv.type)
        if pv.value is None:
            body += _key(2, 0) + _varint(1)
        else:
            body += _value_fields(pv.type, pv.value, 3)
        out += _len_field(2, body)
    return bytes(out)


def encode_metric(m: Metric) -> bytes:
    """One metric message (without its field key)."""
    out = bytearray()
    if m.name is not None:
        out += _len_field(1, m.name.encode("utf-8"))
    if m.alias is not None:
        out += _key(2, 0) + _varint(m.alias)
    if m.timestamp is not None:
        out += _key(3, 0) + _varint(m.timestamp)
    if m.datatype is not None:
        out += _key(4, 0) + _varint(m.datatype)
    if m.is_historical:
        out += _key(5, 0) + b"\x01"
    if m.is_transient:
        out += _key(6, 0) + b"\x01"
    if m.is_null or m.value is None:
        out += _key(7, 0) + b"\x01"
    if m.properties:
        out += _len_field(9, _encode_properties(m.properties))
    if not (m.is_null or m.value is None):
        if m.datatype is None:
            raise ValueError(f"metric {m.name or m.alias}: a value needs a datatype to encode")
        out += _value_fields(m.datatype, m.value, 10)
    return bytes(out)


def encode_payload(p: Payload) -> bytes:
    """Serialise a payload to protobuf bytes."""
    out = bytearray()
    if p.timestamp is not None:
        out += _key(1, 0) + _varint(p.timestamp)
    for m in p.metrics:
        out += _len_field(2, encode_metric(m))
    if p.seq is not None:
        out += _key(3, 0) + _varint(p.seq)
    if p.uuid is not None:
        out += _len_field(4, p.uuid.encode("utf-8"))
    if p.body is not None:
        out += _len_field(5, p.body)
    return bytes(out)


# --------------------------------------------------------------------------- decoding
class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.pos = 0

    def done(self) -> bool:
        return self.pos >= len(self.data)

    def varint(self) -> int:
        shift = result = 0
        while True:
            if self.pos >= len(self.data):
                raise DecodeError("truncated varint")
            b = self.data[self.pos]
            self.pos += 1
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7
            if shift > 63:
                raise DecodeError("varint longer than 10 bytes")

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise DecodeError(f"field of {n} bytes runs past the end of the payload")
        chunk = bytes(self.data[self.pos:self.pos + n])
        self.pos += n
        return chunk

    def fields(self) -> Any:
        """Yield (field number, wire type, value) with varints as int, others as bytes."""
        while not self.done():
            key = self.varint()
            field_no, wire = key >> 3, key & 7
            if wire == 0:
                yield field_no, wire, self.varint()
            elif wire == 1:
                yield field_no, wire, self.take(8)
            elif wire == 2:
                yield field_no, wire, self.take(self.varint())
            elif wire == 5:
                yield field_no, wire, self.take(4)
            else:
                raise DecodeError(f"unsupported wire type {wire} (field {field_no})")


def typed(raw: Any, dtype: int | None) -> Any:
    """Apply a data type to a raw decoded value (two's complement for signed integers)."""
    if dtype is None or raw is None:
        return raw
    try:
        dt = DataType(dtype)
    except ValueError:
        return raw
    bits = _SIGNED_BITS.get(dt)
    if bits is not None and isinstance(raw, int):
        sign = 1 << (bits - 1)
        raw &= (1 << bits) - 1
        return raw - (1 << bits) if raw & sign else raw
    if dt is DataType.Boolean and isinstance(raw, int):
        return bool(raw)
    return raw


def _value_of(field_no: int, wire: int, raw: Any, base: int) -> tuple[bool, Any]:
    """(is a value field, decoded value) for the oneof starting at ``base``."""
    offset = field_no - base
    if offset in (0, 1) and wire == 0:
        return True, raw
    if offset == 2 and wire == 5:
        return True, struct.unpack("<f", raw)[0]
    if offset == 3 and wire == 1:
        return True, struct.unpack("<d", raw)[0]
    if offset == 4 and wire == 0:
        return True, bool(raw)
    if offset == 5 and wire == 2:
        return True, raw.decode("utf-8", errors="replace")
    if base == 10 and field_no == 16 and wire == 2:
        return True, raw
    return False, None


def _decode_properties(data: bytes) -> dict[str, PropertyValue]:
    keys: list[str] = []
    values: list[PropertyValue] = []
    for f, wire, raw in _Reader(data).fields():
        if f == 1 and wire == 2:
            keys.append(raw.decode("utf-8", errors="replace"))
        elif f == 2 and wire == 2:
            pv = PropertyValue(0)
            for g, w2, r2 in _Reader(raw).fields():
                if g == 1 and w2 == 0:
                    pv.type = r2
                else:
                    ok, v = _value_of(g, w2, r2, 3)
                    if ok:
                        pv.value = v
            pv.value = typed(pv.value, pv.type)
            values.append(pv)
    return dict(zip(keys, values, strict=False))


def decode_metric(data: bytes) -> Metric:
    """One metric message; the value is typed when the datatype is present."""
    m = Metric()
    for f, wire, raw in _Reader(data).fields():
        if f == 1 and wire == 2:
            m.name = raw.decode("utf-8", errors="replace")
        elif f == 2 and wire == 0:
            m.alias = raw
        elif f == 3 and wire == 0:
            m.timestamp = raw
        elif f == 4 and wire == 0:
            m.datatype = raw
        elif f == 5 and wire == 0:
            m.is_historical = bool(raw)
        elif f == 6 and wire == 0:
            m.is_transient = bool(raw)
        elif f == 7 and wire == 0:
            m.is_null = bool(raw)
        elif f == 9 and wire == 2:
            m.properties = _decode_properties(raw)
        else:
            ok, value = _value_of(f, wire, raw, 10)
            if ok:
                m.value = value
    m.value = None if m.is_null else typed(m.value, m.datatype)
    return m


def decode_payload(data: bytes) -> Payload:
    """Parse protobuf bytes; unknown fields are skipped, malformed bytes raise DecodeError."""
    p = Payload()
    try:
        for f, wire, raw in _Reader(data).fields():
            if f == 1 and wire == 0:
                p.timestamp = raw
            elif f == 2 and wire == 2:
                p.metrics.append(decode_metric(raw))
            elif f == 3 and wire == 0:
                p.seq = raw
            elif f == 4 and wire == 2:
                p.uuid = raw.decode("utf-8", errors="replace")
            elif f == 5 and wire == 2:
                p.body = raw
    except (struct.error, IndexError) as exc:
        raise DecodeError(str(exc)) from None
    return p
