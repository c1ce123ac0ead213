"""Golden bytes of the hand-written Sparkplug B protobuf codec.

The expected bytes were produced once by Google's protobuf runtime (7.36) from a descriptor
of Eclipse Tahu's ``sparkplug_b.proto`` (Payload, Metric, PropertySet, PropertyValue) and are
pinned here, so the codec stays byte-compatible with every other Sparkplug implementation.
"""

from __future__ import annotations

import pytest

from engine.scada import sparkplug_pb as sp

#: NBIRTH-like payload: bdSeq, rebirth control, a double with a Quality property, signed
#: 32/64-bit ints, a float, a UTF-8 string, a null and bytes
GOLDEN = bytes.fromhex(
    "0880d095ffbc3112120a0562645365711880d095ffbc3120045803121a0a144e6f646520436f6e74726f"
    "6c2f52656269727468200b700012300a0b706164372f77312f70697010b5b8f0fe2d200a4a100a075175"
    "616c6974791205080318c001690000000000648940120a1007200350fbffffff0f120910082009650000"
    "c03f120c1009200c7a0668c3a96c6c6f120f100a200458feffffffffffffffff011206100b200a380112"
    "09100c201182010200011800")

GOLDEN_PAYLOAD = sp.Payload(timestamp=1700000000000, seq=0, metrics=[
    sp.Metric(name="bdSeq", timestamp=1700000000000, datatype=sp.DataType.Int64, value=3),
    sp.Metric(name="Node Control/Rebirth", datatype=sp.DataType.Boolean, value=False),
    sp.Metric(name="pad7/w1/pip", alias=12345678901, datatype=sp.DataType.Double, value=812.5,
              properties={"Quality": sp.PropertyValue(sp.DataType.Int32, 192)}),
    sp.Metric(alias=7, datatype=sp.DataType.Int32, value=-5),
    sp.Metric(alias=8, datatype=sp.DataType.Float, value=1.5),
    sp.Metric(alias=9, datatype=sp.DataType.String, value="héllo"),
    sp.Metric(alias=10, datatype=sp.DataType.Int64, value=-2),
    sp.Metric(alias=11, datatype=sp.DataType.Double, value=None, is_null=True),
    sp.Metric(alias=12, datatype=sp.DataType.Bytes, value=b"\x00\x01"),
])


def test_encode_matches_the_reference_bytes() -> None:
    assert sp.encode_payload(GOLDEN_PAYLOAD) == GOLDEN


def test_decode_reference_bytes() -> None:
    assert sp.decode_payload(GOLDEN) == GOLDEN_PAYLOAD


def test_small_golden_by_hand() -> None:
    # 08 01: timestamp=1 | 12 0d ...: metric (13 bytes) | 18 02: seq=2
    # metric: 0a 01 61 name "a" | 10 01 alias 1 | 20 03 datatype Int32
    #         50 ff ff ff ff 0f int_value = 0xFFFFFFFF (-1 as two's complement)
    p = sp.Payload(timestamp=1, seq=2, metrics=[sp.Metric(name="a", alias=1, datatype=3, value=-1)])
    assert sp.encode_payload(p).hex() == "0801120d0a01611001200350ffffffff0f1802"


def test_data_message_without_datatype_decodes_raw_then_types_by_birth() -> None:
    # DDATA as emitted by other edge nodes: alias only, no datatype, seq 255
    raw = bytes.fromhex("08fbd095ffbc31120f100718fbd095ffbc3150fbffffff0f18ff01")
    p = sp.decode_payload(raw)
    assert p.seq == 255 and p.timestamp == 1700000000123
    m = p.metrics[0]
    assert m.alias == 7 and m.datatype is None and m.value == 0xFFFFFFFB
    assert sp.typed(m.value, sp.DataType.Int32) == -5
    assert sp.typed(0xFF, sp.DataType.Int8) == -1 and sp.typed(0x7F, sp.DataType.Int8) == 127
    assert sp.typed(1, sp.DataType.Boolean) is True


@pytest.mark.parametrize(("dtype", "value"), [
    (sp.DataType.Int8, -128), (sp.DataType.Int16, 32767), (sp.DataType.UInt16, 65535),
    (sp.DataType.UInt32, 4294967295), (sp.DataType.Int64, -(1 << 63)),
    (sp.DataType.UInt64, (1 << 64) - 1), (sp.DataType.DateTime, 1700000000000),
    (sp.DataType.Double, -0.25), (sp.DataType.Boolean, True), (sp.DataType.Text, "ñ"),
    (sp.DataType.UUID, "8c6a0a31-6a2e-4a48-9a0b-7d6d0f1c2e3f"),
])
def test_round_trip_every_scalar_type(dtype: sp.DataType, value: object) -> None:
    p = sp.Payload(seq=5, metrics=[sp.Metric(name="m", datatype=dtype, value=value)])
    assert sp.decode_payload(sp.encode_payload(p)).metrics[0].value == value


def test_values_out_of_range_or_untyped_are_refused() -> None:
    with pytest.raises(ValueError, match="300 does not fit Int8"):
        sp.encode_metric(sp.Metric(name="x", datatype=sp.DataType.Int8, value=300))
    with pytest.raises(ValueError, match="UInt32 needs an integer"):
        sp.encode_metric(sp.Metric(name="x", datatype=sp.DataType.UInt32, value=1.5))
    with pytest.raises(ValueError, match="a value needs a datatype"):
        sp.encode_metric(sp.Metric(name="x", value=1))


def test_unknown_fields_are_skipped_and_garbage_is_a_decode_error() -> None:
    # field 6 (extension range), varint 42, before a normal seq field
    assert sp.decode_payload(bytes.fromhex("302a1803")).seq == 3
    # a metric with a dataset value (field 17) decodes with value None
    m = sp.decode_payload(bytes.fromhex("12060a01788a0100")).metrics[0]
    assert m.name == "x" and m.value is None
    with pytest.raises(sp.DecodeError, match="runs past the end"):
        sp.decode_payload(bytes.fromhex("12ff01"))
    with pytest.raises(sp.DecodeError, match="truncated varint"):
        sp.decode_payload(b"\x08\xff")
    with pytest.raises(sp.DecodeError, match="unsupported wire type"):
        sp.decode_payload(b"\x0b")
