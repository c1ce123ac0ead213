"""Checks across tags: two tags on the same Modbus registers.

Tags of one device, unit id and table are swept in address order. Two whole-register tags
may not share a register; two bits of a register may not be the same bit (a bit may sit in a
register that is also read whole: a status word and its flags). An overlap inside one
template is reported once at the template, whatever the number of instances; an overlap
between two instances is reported once per pair of instances, citing both.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from ..errors import Problems
from .addressing import ModbusAddress
from .model import Instance, Tag


def _rel(tag: Tag, instances: dict[str, Instance]) -> tuple[str, str]:
    """Tag name and address as written in its template (base removed)."""
    addr = tag.modbus
    if tag.instance is None:
        return tag.path, _span(addr, addr.offset)
    base = instances[tag.instance].base
    return tag.path[len(tag.instance) + 1:], _span(addr, addr.offset - base)


def _span(addr: ModbusAddress, offset: int) -> str:
    text = addr.modicon(offset)
    if addr.count > 1:
        text += "-" + addr.modicon(offset + addr.count - 1).split(":")[1]
    if addr.bit is not None:
        text += f".{addr.bit}"
    return text


def check_overlaps(tags: Iterable[Tag], instances: dict[str, Instance],
                   problems: Problems) -> None:
    """Report Modbus tags that read the same registers or bits."""
    groups: dict[tuple[str, int, str], list[Tag]] = defaultdict(list)
    for t in tags:
        if isinstance(t.address, ModbusAddress):
            groups[(t.device, t.address.unit_id, t.address.function)].append(t)
    pairs_seen: set[tuple[str, str]] = set()
    for (device, unit, _), group in sorted(groups.items()):
        words = sorted((t for t in group if t.modbus.bit is None),
                       key=lambda t: (t.modbus.offset, t.path))
        last: Tag | None = None
        for t in words:
            if last is not None and t.modbus.offset < last.modbus.end:
                _report(t, last, device, unit, instances, problems, pairs_seen)
                if t.modbus.end <= last.modbus.end:
                    continue
            last = t
        seen_bits: dict[tuple[int, int], Tag] = {}
        for t in sorted((t for t in group if t.modbus.bit is not None),
                        key=lambda t: (t.modbus.offset, t.modbus.bit or 0, t.path)):
            key = (t.modbus.offset, t.modbus.bit or 0)
            if key in seen_bits:
                _report(t, seen_bits[key], device, unit, instances, problems, pairs_seen)
            else:
                seen_bits[key] = t


def _report(t: Tag, first: Tag, device: str, unit: int, instances: dict[str, Instance],
            problems: Problems, pairs_seen: set[tuple[str, str]]) -> None:
    def placed(x: Tag) -> tuple[str, int, int]:
        loc = instances[x.instance].location if x.instance else x.location
        return loc.file, loc.line, loc.column

    if (t.instance is None or t.instance != first.instance) and placed(first) > placed(t):
        t, first = first, t  # report at the later of the two, citing the earlier
    same_instance = t.instance is not None and t.instance == first.instance
    name, span = _rel(t, instances)
    fname, fspan = _rel(first, instances)
    if same_instance:
        # identical for every instance of the template: reported once (problems dedupe)
        problems.add(t.location, _key(t), f"'{name}' at {span} overlaps '{fname}' at {fspan} "
                     f"(first defined at {first.location})",
                     "each register belongs to one tag; fix the address or the type's width")
        return
    a = t.instance or t.path
    b = first.instance or first.path
    if (a, b) in pairs_seen:
        return
    pairs_seen.add((a, b))
    where = instances[t.instance].location if t.instance else t.location
    there = instances[first.instance].location if first.instance else first.location
    what = f"instance '{t.instance}'" if t.instance else f"tag '{t.path}'"
    other = f"instance '{first.instance}'" if first.instance else f"tag '{first.path}'"
    if t.instance is None and first.instance is None:
        problems.add(where, _key(t), f"'{t.path}' at {_span(t.modbus, t.modbus.offset)} "
                     f"overlaps '{first.path}' at {_span(first.modbus, first.modbus.offset)} "
                     f"on device '{device}' unit {unit} (first defined at {there})",
                     "each register (or bit) belongs to one tag; fix one of the addresses")
        return
    problems.add(
        where, _key(t) if not t.instance else f"instances.{t.instance.split('.', 1)[1]}",
        f"{what} overlaps {other} on device '{device}' unit {unit}: '{t.path}' at "
        f"{_span(t.modbus, t.modbus.offset)} and '{first.path}' at "
        f"{_span(first.modbus, first.modbus.offset)} (first defined at {there})",
        "give each asset its own unit id or base address")


def _key(t: Tag) -> str:
    if t.instance is not None and t.template is not None:
        return f"tags.{t.path[len(t.instance) + 1:]}"
    return f"tags.{t.path.split('.', 1)[1]}"
