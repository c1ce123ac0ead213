"""Modicon notation, widths and node ids."""

from __future__ import annotations

import pytest

from metamodel.tags.addressing import (
    AddressError,
    ModbusAddress,
    parse_modbus,
    parse_node,
    width,
)


@pytest.mark.parametrize("text,expected", [
    ("hr:40001", ("holding_register", 0, None, None)),
    ("40001", ("holding_register", 0, None, None)),
    (40001, ("holding_register", 0, None, None)),
    ("hr:49999", ("holding_register", 9998, None, None)),
    ("hr:400001", ("holding_register", 0, None, None)),
    ("hr:465536", ("holding_register", 65535, None, None)),
    ("ir:30010", ("input_register", 9, None, None)),
    ("di:10001", ("discrete_input", 0, None, None)),
    ("coil:00001", ("coil", 0, None, None)),
    ("co:00002", ("coil", 1, None, None)),
    ("hr:40012-40013", ("holding_register", 11, 2, None)),
    ("hr:40011.3", ("holding_register", 10, None, 3)),
    (" hr : 40001 ", ("holding_register", 0, None, None)),
])
def test_parse_modicon(text: str | int, expected: tuple[object, ...]) -> None:
    assert parse_modbus(text) == expected


@pytest.mark.parametrize("text,message", [
    (1, "address 1 does not say which table it is in"),
    ("hr:30001", "30001 is an input register address, not a holding register one"),
    ("xx:40001", "unknown Modbus table 'xx'"),
    ("hr:40000", "is outside the address space"),
    ("hr:465537", "is outside the address space"),
    ("hr:4001", "holding register addresses are 40001-49999"),
    ("coil:00001.2", "coils and discrete inputs are single bits already"),
    ("hr:40001.16", "a register has bits 0 to 15"),
    ("hr:40005-40001", "the span ends before it starts"),
    ("abc", "is not a Modbus address"),
])
def test_bad_modicon(text: str | int, message: str) -> None:
    with pytest.raises(AddressError) as info:
        parse_modbus(text)
    assert message in info.value.message


def test_modicon_round_trip() -> None:
    for offset in (0, 9, 9998, 9999, 65535):
        addr = ModbusAddress("holding_register", 1, offset, 1)
        assert parse_modbus(addr.modicon())[1] == offset
    assert ModbusAddress("coil", 1, 0, 1).modicon() == "coil:00001"
    assert str(ModbusAddress("holding_register", 3, 11, 2)) == "hr:40012-40013 (unit 3)"


def test_widths() -> None:
    assert [width(t, None) for t in ("int16", "uint32", "float32", "float64", "uint64")] == \
        [1, 2, 2, 4, 4]
    assert width("string", 7) == 4
    assert width("string", 8) == 4


def test_node_ids() -> None:
    assert str(parse_node("ns=2;s=W1.Pip", None)) == "ns=2;s=W1.Pip"
    a = parse_node("s=W1.Pip", "urn:campo:simulator")
    assert a.namespace_uri == "urn:campo:simulator" and a.identifier == "W1.Pip"
    assert parse_node("nsu=urn:x;i=1001", None).kind == "i"
    assert parse_node("i=2258", None).node_id() == "i=2258"
    assert parse_node("s=X", None).node_id(3) == "ns=3;s=X"
    with pytest.raises(AddressError):
        parse_node("i=abc", None)
    with pytest.raises(AddressError):
        parse_node("W1.Pip", None)
