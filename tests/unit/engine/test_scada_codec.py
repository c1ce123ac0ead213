"""Golden register decoding: every type in every byte/word order, from fixed register values.

The registers are written by hand from known bit patterns (pi as float32 is 0x40490FDB), so
a change in our decoder or in pymodbus' conversions shows up here.
"""

from __future__ import annotations

import math
import struct

import pytest
from pymodbus.client import ModbusTcpClient

from engine.scada.codec import CodecError, register_decoder, register_encoder

DT = ModbusTcpClient.DATATYPE
ORDERS = {  # name: (byte_order, word_order)
    "ABCD": ("big", "big"), "CDAB": ("big", "little"),
    "BADC": ("little", "big"), "DCBA": ("little", "little"),
}

#: (type, order, registers as on the wire, value)
GOLDEN: list[tuple[str, str, list[int], object]] = [
    ("int16", "ABCD", [0xFF83], -125),
    ("int16", "BADC", [0x83FF], -125),
    ("uint16", "ABCD", [0xABCD], 43981),
    ("uint16", "BADC", [0xCDAB], 43981),
    ("int32", "ABCD", [0x1234, 0x5678], 0x12345678),
    ("int32", "CDAB", [0x5678, 0x1234], 0x12345678),
    ("int32", "BADC", [0x3412, 0x7856], 0x12345678),
    ("int32", "DCBA", [0x7856, 0x3412], 0x12345678),
    ("int32", "ABCD", [0xDEAD, 0xBEEF], -559038737),
    ("uint32", "ABCD", [0xDEAD, 0xBEEF], 3735928559),
    ("uint32", "CDAB", [0xBEEF, 0xDEAD], 3735928559),
    ("uint32", "BADC", [0xADDE, 0xEFBE], 3735928559),
    ("uint32", "DCBA", [0xEFBE, 0xADDE], 3735928559),
    ("float32", "ABCD", [0x4049, 0x0FDB], 3.1415927410125732),
    ("float32", "CDAB", [0x0FDB, 0x4049], 3.1415927410125732),
    ("float32", "BADC", [0x4940, 0xDB0F], 3.1415927410125732),
    ("float32", "DCBA", [0xDB0F, 0x4940], 3.1415927410125732),
    ("float32", "ABCD", [0xC2F6, 0xE979], -123.456),
    ("int64", "ABCD", [0x0102, 0x0304, 0x0506, 0x0708], 0x0102030405060708),
    ("int64", "CDAB", [0x0708, 0x0506, 0x0304, 0x0102], 0x0102030405060708),
    ("int64", "BADC", [0x0201, 0x0403, 0x0605, 0x0807], 0x0102030405060708),
    ("int64", "DCBA", [0x0807, 0x0605, 0x0403, 0x0201], 0x0102030405060708),
    ("int64", "ABCD", [0xFFFF, 0xFFFF, 0xFFFF, 0xFFFE], -2),
    ("uint64", "ABCD", [0xFFFF, 0xFFFF, 0xFFFF, 0xFFFE], 18446744073709551614),
    ("uint64", "DCBA", [0xFEFF, 0xFFFF, 0xFFFF, 0xFFFF], 18446744073709551614),
    ("float64", "ABCD", [0x4009, 0x21FB, 0x5444, 0x2D18], math.pi),
    ("float64", "CDAB", [0x2D18, 0x5444, 0x21FB, 0x4009], math.pi),
    ("float64", "BADC", [0x0940, 0xFB21, 0x4454, 0x182D], math.pi),
    ("float64", "DCBA", [0x182D, 0x4454, 0xFB21, 0x0940], math.pi),
]


def wire(registers: list[int]) -> bytes:
    return struct.pack(f">{len(registers)}H", *registers)


@pytest.mark.parametrize("dtype,order,regs,value", GOLDEN)
def test_golden_decode(dtype: str, order: str, regs: list[int], value: object) -> None:
    byte_order, word_order = ORDERS[order]
    got = register_decoder(dtype, byte_order, word_order)(wire(regs))
    if isinstance(value, float):
        assert got == pytest.approx(value, rel=1e-7)
    else:
        assert got == value


@pytest.mark.parametrize("dtype,order,regs,value", GOLDEN)
def test_golden_encode(dtype: str, order: str, regs: list[int], value: object) -> None:
    byte_order, word_order = ORDERS[order]
    assert list(register_encoder(dtype, byte_order, word_order)(value)) == regs


@pytest.mark.parametrize("dtype,order,regs,value",
                         [g for g in GOLDEN if g[1] in ("ABCD", "CDAB") and g[0] != "int16"
                          or g[1] == "ABCD"])
def test_pymodbus_agrees(dtype: str, order: str, regs: list[int], value: object) -> None:
    """pymodbus' conversions (big bytes, either word order) give the same answers."""
    word_order = "big" if order == "ABCD" else "little"
    kind = getattr(DT, dtype.upper())
    decoded = ModbusTcpClient.convert_from_registers(regs, kind, word_order=word_order)
    if isinstance(value, float):
        assert decoded == pytest.approx(value, rel=1e-7)
    else:
        assert decoded == value
    assert ModbusTcpClient.convert_to_registers(value, kind, word_order=word_order) == regs


def test_strings() -> None:
    regs = [0x4341, 0x4D50, 0x4F2D, 0x3031]  # "CAMPO-01"
    assert register_decoder("string", length=8)(wire(regs)) == "CAMPO-01"
    assert register_decoder("string", "little", length=8)(
        wire([0x4143, 0x504D, 0x2D4F, 0x3130])) == "CAMPO-01"
    assert register_decoder("string", length=4)(wire([0x5731, 0x0000])) == "W1"
    assert list(register_encoder("string", length=4)("W1")) == [0x5731, 0x0000]
    assert list(register_encoder("string", length=3)("abc")) == [0x6162, 0x6300]
    assert ModbusTcpClient.convert_from_registers(regs, DT.STRING) == "CAMPO-01"
    with pytest.raises(CodecError):
        register_encoder("string", length=4)("toolong")


def test_bits_of_a_register() -> None:
    assert register_decoder("bool", bit=3)(wire([0x0008])) is True
    assert register_decoder("bool", bit=2)(wire([0x0008])) is False
    assert register_decoder("bool", bit=15)(wire([0x8000])) is True
    # little byte order: the wire word 0x0800 holds the value 0x0008
    assert register_decoder("bool", "little", bit=3)(wire([0x0800])) is True


def test_encoder_range_checks() -> None:
    with pytest.raises(CodecError, match="does not fit uint16"):
        register_encoder("uint16")(70000)
    with pytest.raises(CodecError, match="does not fit int16"):
        register_encoder("int16")(-40000)
    assert list(register_encoder("uint16")(4550.0)) == [4550]
    assert list(register_encoder("int16")(-125)) == [0xFF83]
    with pytest.raises(CodecError, match="finite"):
        register_encoder("float32")(float("nan"))
