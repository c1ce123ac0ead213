"""Raw values to engineering values and back, compiled once per tag.

A Modbus driver hands the pipeline each tag's registers as ``bytes`` in wire order (every
register big-endian, registers in address order) or a ``bool`` for a coil or discrete
input; OPC-UA and MQTT drivers hand over typed values. :func:`compile_decoder` builds one
closure per tag that decodes (``struct``, with byte and word order applied) and scales, so
the per-update cost is one call. :func:`compile_encoder` is the inverse used by writes.

Byte and word order: ``byte_order`` is the order of the two bytes inside a register,
``word_order`` the order of the registers of a 32- or 64-bit value. big/big is "ABCD",
big words with little bytes "BADC", little words with big bytes "CDAB", little/little "DCBA".
A value is decoded as ``struct`` with the byte order's endianness, after reversing the
registers when the two orders differ.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from typing import Any

from metamodel.tags import ModbusAddress, Tag
from metamodel.tags.addressing import INTEGER_RANGES

from .types import Value

#: struct format letters by data type
FORMATS: dict[str, str] = {
    "int16": "h", "uint16": "H", "int32": "i", "uint32": "I", "int64": "q", "uint64": "Q",
    "float32": "f", "float64": "d",
}
INTEGER_TYPES = frozenset(INTEGER_RANGES)
FLOAT_TYPES = frozenset({"float32", "float64"})

Decoder = Callable[[Any], Value]
Encoder = Callable[[Any], "tuple[int, ...] | bool"]


class CodecError(ValueError):
    """A value that cannot be encoded for its tag (out of the type's range, too long)."""


def _swap_words(n: int) -> Callable[[bytes], bytes]:
    """Reverse the order of the ``n`` registers in a byte string."""
    if n == 2:
        return lambda b: b[2:4] + b[0:2]
    if n == 4:
        return lambda b: b[6:8] + b[4:6] + b[2:4] + b[0:2]
    return lambda b: b"".join(b[i:i + 2] for i in range(2 * n - 2, -2, -2))


def _swap_bytes(b: bytes) -> bytes:
    """Swap the two bytes of every register."""
    out = bytearray(b)
    out[0::2], out[1::2] = b[1::2], b[0::2]
    return bytes(out)


def register_decoder(data_type: str, byte_order: str = "big", word_order: str = "big",
                     length: int | None = None, bit: int | None = None) -> Decoder:
    """A function from a tag's register bytes (wire order) to its raw value."""
    if bit is not None:
        mask = 1 << bit
        if byte_order == "little":
            return lambda raw: bool(int.from_bytes(raw[0:2], "little") & mask)
        return lambda raw: bool(int.from_bytes(raw[0:2], "big") & mask)
    if data_type == "string":
        little = byte_order == "little"

        def text(raw: bytes) -> str:
            data = _swap_bytes(raw) if little else raw
            return data.rstrip(b"\x00").decode("utf-8", "replace")
        return text
    if data_type == "bool":
        return lambda raw: bool(raw)
    fmt = FORMATS[data_type]
    st = struct.Struct(("<" if byte_order == "little" else ">") + fmt)
    unpack = st.unpack
    registers = st.size // 2
    if registers > 1 and word_order != byte_order:
        words = _swap_words(registers)
        return lambda raw: unpack(words(raw))[0]
    return lambda raw: unpack(raw)[0]


def register_encoder(data_type: str, byte_order: str = "big", word_order: str = "big",
                     length: int | None = None) -> Callable[[Any], tuple[int, ...]]:
    """A function from a raw value to the registers to write (wire order)."""
    if data_type == "string":
        size = 2 * (((length or 0) + 1) // 2)
        little = byte_order == "little"

        def text(value: Any) -> tuple[int, ...]:
            data = str(value).encode("utf-8")
            if len(data) > (length or 0):
                raise CodecError(f"'{value}' is longer than {length} bytes")
            data = data.ljust(size, b"\x00")
            data = _swap_bytes(data) if little else data
            return struct.unpack(f">{size // 2}H", data)
        return text
    fmt = FORMATS[data_type]
    st = struct.Struct(("<" if byte_order == "little" else ">") + fmt)
    registers = st.size // 2
    swap = _swap_words(registers) if registers > 1 and word_order != byte_order else None
    words = struct.Struct(f">{registers}H")
    bounds = INTEGER_RANGES.get(data_type)

    def encode(value: Any) -> tuple[int, ...]:
        if bounds is not None:
            if isinstance(value, float):
                if not value.is_integer():
                    value = round(value)
                value = int(value)
            if not bounds[0] <= value <= bounds[1]:
                raise CodecError(f"{value} does not fit {data_type} "
                                 f"({bounds[0]}..{bounds[1]})")
        elif isinstance(value, float) and not math.isfinite(value):
            raise CodecError(f"{value} is not a finite number")
        data = st.pack(value)
        if swap is not None:
            data = swap(data)
        return words.unpack(data)
    return encode


def native_decoder(data_type: str | None) -> Decoder:
    """Coerce a typed value from OPC-UA or MQTT to the tag's declared type (if any)."""
    if data_type is None:
        def passthrough(v: Any) -> Value:
            if v is None or isinstance(v, (bool, int, float, str)):
                return v
            return str(v)
        return passthrough
    if data_type == "bool":
        def to_bool(v: Any) -> bool:
            if isinstance(v, str):
                low = v.strip().lower()
                if low in ("true", "1", "on", "yes"):
                    return True
                if low in ("false", "0", "off", "no", ""):
                    return False
                raise ValueError(f"'{v}' is not a boolean")
            return bool(v)
        return to_bool
    if data_type in INTEGER_TYPES:
        return lambda v: int(v)
    if data_type in FLOAT_TYPES:
        return lambda v: float(v)
    return lambda v: str(v)


def compile_decoder(tag: Tag) -> Decoder:
    """Decode and scale in one call: raw (bytes, bool or typed value) -> engineering value."""
    if isinstance(tag.address, ModbusAddress):
        if tag.address.is_bits:
            return lambda raw: bool(raw)
        decode = register_decoder(tag.data_type or "uint16", tag.byte_order, tag.word_order,
                                  tag.length, tag.address.bit)
    else:
        decode = native_decoder(tag.data_type)
    sc = tag.scaling
    if sc is None:
        return decode
    factor, offset = sc.factor, sc.offset
    if offset == 0.0:
        return lambda raw: decode(raw) * factor  # type: ignore[operator]
    return lambda raw: decode(raw) * factor + offset  # type: ignore[operator]


def compile_encoder(tag: Tag) -> Callable[[Any], Any]:
    """Engineering value -> what the driver writes (registers, a bool or a typed value)."""
    sc = tag.scaling
    dtype = tag.data_type
    if isinstance(tag.address, ModbusAddress):
        if tag.address.is_bits:
            return lambda v: bool(v)
        encode = register_encoder(dtype or "uint16", tag.byte_order, tag.word_order, tag.length)
    else:
        native = native_decoder(dtype)

        def encode(v: Any) -> Any:
            return native(v)
    if sc is None or dtype in ("bool", "string"):
        return encode
    integer = dtype in INTEGER_TYPES

    def unscale(v: Any) -> Any:
        raw = sc.to_raw(float(v))
        return encode(round(raw) if integer else raw)
    return unscale


def resolution(tag: Tag) -> float:
    """The smallest engineering step the tag can show (for read-back comparisons)."""
    if tag.data_type in INTEGER_TYPES:
        return abs(tag.scaling.factor) if tag.scaling else 1.0
    if tag.data_type == "float32":
        return 1e-6
    return 1e-9
