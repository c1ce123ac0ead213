"""Addresses and data types: Modicon notation, register widths, OPC-UA node ids.

Modbus addresses are written either in 1-based Modicon notation with the table's leading
digit (``hr:40001``, ``40001``, ``ir:30010``, ``di:10001``, ``coil:00001``, six digits above
9999: ``hr:410001``), optionally as a span (``hr:40001-40002``) or a bit of a register
(``hr:40011.3``), or explicitly as ``function`` plus a zero-based ``offset`` (what goes on
the wire). Both forms become the same :class:`ModbusAddress`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: long name -> (Modicon leading digit, read function code, short name)
TABLES: dict[str, tuple[str, int, str]] = {
    "coil": ("0", 1, "coil"),
    "discrete_input": ("1", 2, "di"),
    "input_register": ("3", 4, "ir"),
    "holding_register": ("4", 3, "hr"),
}
SHORT: dict[str, str] = {"co": "coil", "coil": "coil", "di": "discrete_input",
                         "ir": "input_register", "hr": "holding_register"}
BY_DIGIT: dict[str, str] = {digit: name for name, (digit, _, _) in TABLES.items()}
BIT_TABLES = frozenset({"coil", "discrete_input"})
WRITABLE_TABLES = frozenset({"coil", "holding_register"})
#: registers per value; strings: ceil(length / 2); bool: one bit (or one register's bit)
WIDTHS: dict[str, int] = {
    "bool": 1, "int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "float32": 2,
    "int64": 4, "uint64": 4, "float64": 4,
}
NUMERIC_TYPES = frozenset({"int16", "uint16", "int32", "uint32", "int64", "uint64",
                           "float32", "float64"})
INTEGER_RANGES: dict[str, tuple[int, int]] = {
    "int16": (-(2**15), 2**15 - 1), "uint16": (0, 2**16 - 1),
    "int32": (-(2**31), 2**31 - 1), "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1), "uint64": (0, 2**64 - 1),
}
LAST_OFFSET = 65535


class AddressError(ValueError):
    """An address that cannot be read, with a hint on how to write it."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


@dataclass(frozen=True, slots=True)
class ModbusAddress:
    """Where a Modbus tag lives: table, unit id, zero-based offset and width."""

    function: str
    unit_id: int
    offset: int
    #: registers (register tables) or bits (coils, discrete inputs)
    count: int
    #: bit 0..15 of a register, for a bool read out of a register
    bit: int | None = None

    @property
    def read_code(self) -> int:
        """The Modbus function code that reads this table (1, 2, 3 or 4)."""
        return TABLES[self.function][1]

    @property
    def is_bits(self) -> bool:
        return self.function in BIT_TABLES

    @property
    def end(self) -> int:
        """One past the last offset read."""
        return self.offset + self.count

    def modicon(self, offset: int | None = None) -> str:
        """``hr:40001`` style text of ``offset`` (default: this address's first offset)."""
        digit, _, short = TABLES[self.function]
        n = self.offset if offset is None else offset
        number = f"{digit}{n + 1:04d}" if n < 9999 else f"{digit}{n + 1:05d}"
        return f"{short}:{number}"

    def __str__(self) -> str:
        text = self.modicon()
        if self.count > 1:
            text += "-" + self.modicon(self.end - 1).split(":")[1]
        if self.bit is not None:
            text += f".{self.bit}"
        return f"{text} (unit {self.unit_id})"


_MODICON = re.compile(
    r"^\s*(?:(?P<table>[a-z_]+)\s*:\s*)?(?P<first>\d+)(?:\s*-\s*(?P<last>\d+))?"
    r"(?:\.(?P<bit>\d+))?\s*$")

_EXAMPLES = "write hr:40001, ir:30001, di:10001 or coil:00001, or give 'function' and 'offset'"


def _number_offset(number: str, table: str, text: str) -> int:
    digit = TABLES[table][0]
    if len(number) not in (5, 6) or number[0] != digit:
        lo, hi = f"{digit}0001", f"{digit}9999"
        raise AddressError(
            f"'{text}': {table.replace('_', ' ')} addresses are {lo}-{hi} or "
            f"{digit}00001-{digit}65536",
            _EXAMPLES)
    rest = int(number[1:])
    if rest < 1 or rest - 1 > LAST_OFFSET:
        raise AddressError(f"'{text}' is outside the address space ({digit}00001-{digit}65536)",
                           _EXAMPLES)
    return rest - 1


def parse_modbus(text: str | int) -> tuple[str, int, int | None, int | None]:
    """Parse a Modicon address: ``(table, offset, count or None, bit or None)``."""
    raw = str(text)
    if isinstance(text, int) and text < 10001:
        raise AddressError(f"address {text} does not say which table it is in", _EXAMPLES)
    m = _MODICON.match(raw)
    if not m:
        raise AddressError(f"'{raw}' is not a Modbus address", _EXAMPLES)
    first = m.group("first")
    if m.group("table") is not None:
        short = m.group("table")
        if short not in SHORT and short not in TABLES:
            from ..errors import expected_one_of

            raise AddressError(f"unknown Modbus table '{short}' in '{raw}'",
                               expected_one_of(short, ["hr", "ir", "di", "coil"]))
        table = SHORT.get(short, short)
        if first[0] != TABLES[table][0] and len(first) in (5, 6) and first[0] in BY_DIGIT:
            other = BY_DIGIT[first[0]]
            raise AddressError(
                f"'{raw}': {first} is {_a(other)} address, not {_a(table)} one",
                f"write {TABLES[other][2]}:{first}, or {TABLES[table][2]}:"
                f"{TABLES[table][0]}{first[1:]}")
    else:
        if len(first) not in (5, 6) or first[0] not in BY_DIGIT:
            raise AddressError(f"'{raw}' does not say which table it is in", _EXAMPLES)
        table = BY_DIGIT[first[0]]
    offset = _number_offset(first, table, raw)
    count = None
    if m.group("last") is not None:
        last = _number_offset(m.group("last"), table, raw)
        if last < offset:
            raise AddressError(f"'{raw}': the span ends before it starts")
        count = last - offset + 1
    bit = None
    if m.group("bit") is not None:
        bit = int(m.group("bit"))
        if table in BIT_TABLES:
            raise AddressError(f"'{raw}': coils and discrete inputs are single bits already",
                               "drop the '.N' suffix")
        if bit > 15:
            raise AddressError(f"'{raw}': a register has bits 0 to 15")
    return table, offset, count, bit


def _a(table: str) -> str:
    name = table.replace("_", " ")
    return f"an {name}" if name[0] in "aeiou" else f"a {name}"


def width(data_type: str, length: int | None) -> int:
    """Registers a value of ``data_type`` takes (bits for a bool on a bit table)."""
    if data_type == "string":
        return ((length or 0) + 1) // 2
    return WIDTHS[data_type]


# --------------------------------------------------------------------------- OPC-UA

_NODE = re.compile(r"^(?:(?:ns=(?P<ns>\d+)|nsu=(?P<nsu>[^;]+));)?"
                   r"(?P<kind>[isgb])=(?P<ident>.+)$")


@dataclass(frozen=True, slots=True)
class OpcUaAddress:
    """An OPC-UA node: by namespace index or URI (``nsu=``), identifier kind and value."""

    identifier: str
    #: 'i' numeric, 's' string, 'g' GUID, 'b' opaque
    kind: str = "s"
    namespace_index: int | None = None
    namespace_uri: str | None = None

    def node_id(self, index: int | None = None) -> str:
        """The node id text with a namespace index (resolved from the URI by the driver)."""
        ns = self.namespace_index if index is None else index
        return f"ns={ns};{self.kind}={self.identifier}" if ns else f"{self.kind}={self.identifier}"

    def __str__(self) -> str:
        if self.namespace_uri is not None:
            return f"nsu={self.namespace_uri};{self.kind}={self.identifier}"
        if self.namespace_index is not None:
            return f"ns={self.namespace_index};{self.kind}={self.identifier}"
        return f"{self.kind}={self.identifier}"


def parse_node(text: str, default_uri: str | None) -> OpcUaAddress:
    """Parse ``ns=2;s=X``, ``nsu=urn:x;s=X``, ``i=85`` or ``s=X`` (device namespace)."""
    m = _NODE.match(text.strip())
    if not m:
        raise AddressError(f"'{text}' is not an OPC-UA node id",
                           "write ns=2;s=Name, nsu=urn:your:namespace;s=Name or i=2258")
    kind, ident = m.group("kind"), m.group("ident")
    if kind == "i" and not ident.isdigit():
        raise AddressError(f"'{text}': a numeric node id (i=) takes digits only")
    if m.group("ns") is not None:
        return OpcUaAddress(ident, kind, namespace_index=int(m.group("ns")))
    if m.group("nsu") is not None:
        return OpcUaAddress(ident, kind, namespace_uri=m.group("nsu"))
    if default_uri is not None:
        return OpcUaAddress(ident, kind, namespace_uri=default_uri)
    return OpcUaAddress(ident, kind, namespace_index=0)


# --------------------------------------------------------------------------- MQTT

_PATH = re.compile(r"^[A-Za-z0-9_\-]+(\[\d+\])*(\.[A-Za-z0-9_\-]+(\[\d+\])*)*$")


@dataclass(frozen=True, slots=True)
class MqttAddress:
    """A value on MQTT: a JSON ``topic`` and value ``path``, or a Sparkplug B ``metric``."""

    topic: str | None = None
    #: dotted path into the JSON payload (``data.pip``, ``values[0]``); None: the whole payload
    path: str | None = None
    timestamp_path: str | None = None
    metric: str | None = None
    #: Sparkplug B group / edge node / device (from the device, or the tag's topic)
    group: str | None = None
    edge_node: str | None = None
    device: str | None = None

    def __str__(self) -> str:
        if self.metric is not None:
            where = "/".join(p for p in (self.group, self.edge_node, self.device) if p)
            return f"{where}:{self.metric}"
        return f"{self.topic}" + (f"#{self.path}" if self.path else "")


def check_topic(topic: str) -> None:
    """A tag's topic is one exact topic: no wildcards."""
    if "+" in topic or "#" in topic:
        raise AddressError(f"topic '{topic}' has a wildcard; a tag reads one exact topic",
                           "put wildcards in the device's 'topics:' list instead")


def check_path(path: str) -> None:
    """A JSON value path: ``a.b[0].c``."""
    if not _PATH.match(path):
        raise AddressError(f"'{path}' is not a JSON value path",
                           "write keys separated by dots, list items as [n]: data.values[0]")
