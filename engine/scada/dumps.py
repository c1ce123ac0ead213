"""Captured register dumps checked against a template's decoding (``campo tags check``).

Beside ``tags/templates/<name>.yaml`` a folder ``<name>.dumps/`` may hold YAML files, each
one capture of a real controller's registers and the engineering values its own display
showed at that moment::

    description: W1 at 45 Hz, captured from the controller's Modbus port
    registers:                       # Modicon start address: registers (or bits) from there
      hr:40001: [0x4442, 0x6651, ...]
      coil:00001: [true, true]
    expect:                          # tag of the template: engineering value
      pip: 777.6
      running: true
    tolerance: 0.05                  # optional: absolute, on top of each tag's resolution

Each expected tag is decoded from the registers with the same code the runtime uses (the
instance is expanded on a stand-in Modbus device, unit and base address ignored), and
compared. A pymodbus or decoder change that shifts a bit order shows up here.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from metamodel.errors import Location, Problems, expected_one_of
from metamodel.source import Document, read_yaml
from metamodel.tags import ModbusAddress, Tag, TagModel, build_tags, parse_modbus, tag_files
from metamodel.tags.addressing import AddressError

from .codec import compile_decoder, resolution

SITE, DEVICE, INSTANCE = "dump", "device", "instance"


@dataclass(frozen=True, slots=True)
class Mismatch:
    """One expected value the registers do not decode to."""

    location: Location
    tag: str
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.tag}: {self.message}"


@dataclass(frozen=True, slots=True)
class DumpResult:
    """The outcome of one dump file."""

    file: str
    checked: int
    mismatches: tuple[Mismatch, ...]


def dump_folder(model: TagModel, template: str) -> Path:
    """``<root>/tags/templates/<template>.dumps`` (beside the template's file)."""
    file = Path(model.root) / model.templates[template].file
    return file.with_suffix(".dumps")


def expand_template(root: Path, template: str, params: dict[str, str] | None = None
                    ) -> dict[str, Tag]:
    """The template's tags on a stand-in Modbus device, by tag name (DefinitionError if bad)."""
    problems = Problems()
    docs = []
    for p in tag_files(root):
        doc = read_yaml(p, p.relative_to(root).as_posix(), problems)
        if doc is not None and isinstance(doc.value, dict) and "site" not in doc.value:
            docs.append(doc)
    site = Document("(tags check)", {
        "site": SITE,
        "devices": {DEVICE: {"type": "modbus_tcp", "host": "dump"}},
        "instances": {INSTANCE: {"template": template, "device": DEVICE,
                                 "params": params or {}}},
    })
    model = build_tags([*docs, site], problems, {}, {}, None, str(root))
    problems.raise_if_any()
    prefix = f"{SITE}.{INSTANCE}."
    return {p[len(prefix):]: t for p, t in model.tags.items() if p.startswith(prefix)}


def _register_map(doc: Any, problems: Problems) -> dict[tuple[str, int], Any]:
    regs: dict[tuple[str, int], Any] = {}
    section = doc.value.get("registers") if isinstance(doc.value, dict) else None
    if not isinstance(section, dict):
        problems.add(doc.where(()), "registers", "a dump needs 'registers:' "
                     "(Modicon start address: list of register values)")
        return regs
    for key, values in section.items():
        where = doc.where_key(("registers", key))
        try:
            table, offset, _, bit = parse_modbus(key)
        except AddressError as exc:
            problems.add(where, f"registers.{key}", exc.message, exc.hint)
            continue
        if not isinstance(values, list):
            values = [values]
        for i, v in enumerate(values):
            bits = table in ("coil", "discrete_input")
            ok = isinstance(v, bool) if bits else (
                isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 0xFFFF)
            if not ok:
                problems.add(doc.where(("registers", key, i)), f"registers.{key}[{i}]",
                             f"{v!r} is not {'true or false' if bits else 'a register 0..65535'}")
                continue
            regs[(table, offset + i)] = v
    return regs


def _raw(a: ModbusAddress, regs: dict[tuple[str, int], Any]) -> Any:
    if a.is_bits:
        return regs[(a.function, a.offset)]
    words = [regs[(a.function, a.offset + i)] for i in range(a.count)]
    return struct.pack(f">{a.count}H", *words)


def check_dump(path: Path, display: str, tags: dict[str, Tag]) -> DumpResult:
    """Decode one dump file's expected tags and compare them."""
    problems = Problems()
    doc = read_yaml(path, display, problems)
    out: list[Mismatch] = []
    if doc is None:
        return DumpResult(display, 0, tuple(Mismatch(p.location, "-", p.message)
                                           for p in problems.items))
    regs = _register_map(doc, problems)
    expect = doc.value.get("expect") if isinstance(doc.value, dict) else None
    extra = doc.value.get("tolerance", 0.0) if isinstance(doc.value, dict) else 0.0
    if not isinstance(expect, dict) or not expect:
        problems.add(doc.where(()), "expect", "a dump needs 'expect:' (tag: value)")
        expect = {}
    checked = 0
    for name, want in expect.items():
        where = doc.where(("expect", name))
        tag = tags.get(name)
        if tag is None:
            out.append(Mismatch(where, name, "the template has no such tag; "
                                + expected_one_of(name, tags)))
            continue
        try:
            raw = _raw(tag.modbus, regs)
        except KeyError as exc:
            out.append(Mismatch(where, name, f"the dump has no value at "
                                f"{tag.modbus.modicon(exc.args[0][1])}"))
            continue
        got = compile_decoder(tag)(raw)
        checked += 1
        if not _close(got, want, resolution(tag) / 2 + float(extra)):
            out.append(Mismatch(where, name, f"expected {want!r}, decoded {got!r}"))
    out.extend(Mismatch(p.location, p.path or "-", p.message) for p in problems.items)
    out.sort(key=lambda m: (m.location.line, m.location.column))
    return DumpResult(display, checked, tuple(out))


def _close(got: Any, want: Any, tol: float) -> bool:
    if isinstance(want, bool) or isinstance(got, bool) or isinstance(want, str):
        return bool(got == want)
    if not isinstance(want, (int, float)) or got is None:
        return False
    return math.isclose(float(got), float(want), rel_tol=1e-6, abs_tol=tol)


def check_template(model: TagModel, template: str) -> list[DumpResult]:
    """Every dump of ``template`` (an empty list when it has no ``.dumps`` folder)."""
    folder = dump_folder(model, template)
    if not folder.is_dir():
        return []
    root = Path(model.root)
    # parameters only fill in texts; decoding does not depend on them
    tags = expand_template(root, template, {p: p for p in model.templates[template].parameters})
    results = []
    for f in sorted(folder.glob("*.y*ml")):
        results.append(check_dump(f, f.relative_to(root).as_posix(), tags))
    return results
