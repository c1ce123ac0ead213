"""Coalesce Modbus tags into the fewest read requests, and estimate their bus time.

The tags of one device, unit id and table are sorted by address; tags that share registers
(a status word and its bits) are merged into one *segment*. A request reads a contiguous
range, so the segments it covers are consecutive, and a run of segments is one request when
its span fits the protocol limit (125 registers, 2000 bits, or the device's lower limit) and
no hole between two of its segments is wider than the device's ``max_gap``. Shortening a
feasible run keeps it feasible, so a dynamic program over "the first *j* segments" finds a
plan with the fewest requests and, among those, the fewest registers read: it is optimal
for the model above, not a heuristic (``tests/unit/engine/test_scada_planner.py`` checks it
against an exhaustive search).

Bus time: on TCP each request costs one round trip (requests spread over ``concurrency``
connections); on RTU a request costs its frames on the wire at the line's baud rate, the
silent intervals around them and the unit's turnaround.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from metamodel.tags import Device, ModbusAddress, Tag
from metamodel.tags.spec import ModbusRtuSpec, ModbusTcpSpec, seconds

#: protocol limits per read request
MAX_REGISTERS = 125
MAX_BITS = 2000


@dataclass(frozen=True, slots=True)
class Slot:
    """Where one tag's data sits in a request's response."""

    tag: str
    #: offset from the request's start, in registers (or bits)
    at: int
    count: int


@dataclass(frozen=True, slots=True)
class Request:
    """One read request: table, unit id, first offset, count, and the tags it serves."""

    function: str
    unit_id: int
    start: int
    count: int
    slots: tuple[Slot, ...]

    @property
    def code(self) -> int:
        """Modbus function code (1, 2, 3 or 4)."""
        return ModbusAddress(self.function, self.unit_id, self.start, 1).read_code

    @property
    def tags(self) -> tuple[str, ...]:
        return tuple(s.tag for s in self.slots)

    @property
    def is_bits(self) -> bool:
        return self.function in ("coil", "discrete_input")

    def describe(self) -> str:
        """``fc3 unit 1 hr:40001 +31`` style text."""
        first = ModbusAddress(self.function, self.unit_id, self.start, self.count)
        return f"fc{self.code} unit {self.unit_id} {first.modicon()} +{self.count}"


@dataclass(frozen=True, slots=True)
class Limits:
    """A device's planning limits."""

    max_registers: int = MAX_REGISTERS
    max_bits: int = MAX_BITS
    max_gap: int = 0
    max_bit_gap: int = 0

    @classmethod
    def of(cls, device: Device) -> Limits:
        """The limits a Modbus device's options set."""
        spec = device.spec
        assert isinstance(spec, (ModbusTcpSpec, ModbusRtuSpec))
        bit_gap = spec.max_bit_gap if spec.max_bit_gap is not None else 16 * spec.max_gap
        return cls(spec.max_registers, spec.max_bits, spec.max_gap, bit_gap)


def _segments(items: Sequence[tuple[str, ModbusAddress]]
              ) -> list[tuple[int, int, list[tuple[str, ModbusAddress]]]]:
    """Merge items that share registers: ``(start, end, items)`` sorted by start."""
    out: list[tuple[int, int, list[tuple[str, ModbusAddress]]]] = []
    for path, a in sorted(items, key=lambda x: (x[1].offset, x[1].end, x[0])):
        if out and a.offset < out[-1][1]:
            s, e, members = out[-1]
            members.append((path, a))
            out[-1] = (s, max(e, a.end), members)
        else:
            out.append((a.offset, a.end, [(path, a)]))
    return out


def optimal_runs(starts: Sequence[int], ends: Sequence[int], limit: int, max_gap: int
                 ) -> list[tuple[int, int]]:
    """Split sorted, disjoint segments into the fewest feasible runs ``(first, last)``.

    Ties on the number of runs are broken by the fewest registers read.
    """
    n = len(starts)
    inf = (math.inf, math.inf)
    best: list[tuple[float, float]] = [(0, 0)] + [inf] * n
    back = [0] * (n + 1)
    for j in range(1, n + 1):
        # try runs i..j-1 (0-based), growing leftwards while feasible
        i = j - 1
        while i >= 0:
            span = ends[j - 1] - starts[i]
            if span > limit:
                break
            prev = best[i]
            cand = (prev[0] + 1, prev[1] + span)
            if cand < best[j]:
                best[j], back[j] = cand, i
            if i > 0 and starts[i] - ends[i - 1] > max_gap:
                break
            i -= 1
        if best[j] == inf:
            raise ValueError(f"segment {starts[j - 1]}..{ends[j - 1]} is longer than {limit}")
    runs: list[tuple[int, int]] = []
    j = n
    while j > 0:
        i = back[j]
        runs.append((i, j - 1))
        j = i
    return runs[::-1]


def plan_requests(items: Iterable[tuple[str, ModbusAddress]], limits: Limits = Limits()
                  ) -> list[Request]:
    """The fewest read requests that cover ``items`` (tag path, address) within ``limits``."""
    groups: dict[tuple[int, str], list[tuple[str, ModbusAddress]]] = defaultdict(list)
    for path, a in items:
        groups[(a.unit_id, a.function)].append((path, a))
    out: list[Request] = []
    for (unit, function), group in sorted(groups.items()):
        bits = function in ("coil", "discrete_input")
        limit = limits.max_bits if bits else limits.max_registers
        gap = limits.max_bit_gap if bits else limits.max_gap
        segs = _segments(group)
        runs = optimal_runs([s[0] for s in segs], [s[1] for s in segs], limit, gap)
        for first, last in runs:
            start, end = segs[first][0], segs[last][1]
            slots = tuple(Slot(p, a.offset - start, a.count)
                          for s in segs[first:last + 1] for p, a in s[2])
            out.append(Request(function, unit, start, end - start, slots))
    return out


def plan_tags(tags: Iterable[Tag], limits: Limits = Limits()) -> list[Request]:
    """:func:`plan_requests` for Modbus tags."""
    return plan_requests(((t.path, t.modbus) for t in tags), limits)


# --------------------------------------------------------------------------- bus time


def rtu_request_seconds(req: Request, spec: ModbusRtuSpec) -> float:
    """Time one read request takes on an RTU line (frames, silences, turnaround)."""
    char = (1 + spec.bytesize + (0 if spec.parity == "N" else 1) + spec.stopbits) / spec.baudrate
    data = math.ceil(req.count / 8) if req.is_bits else 2 * req.count
    frames = 8 + 5 + data  # request: id fc start count crc; response: id fc n data crc
    # 3.5 character times of silence after each frame (at least 1.75 ms above 19200 baud)
    silence = max(3.5 * char, 0.00175) if spec.baudrate > 19200 else 3.5 * char
    return frames * char + 2 * silence + seconds(spec.turnaround)


def bus_seconds(requests: Sequence[Request], device: Device,
                round_trip: float | None = None) -> float:
    """Estimated time for one scan's requests on ``device``."""
    spec = device.spec
    if isinstance(spec, ModbusRtuSpec):
        return sum(rtu_request_seconds(r, spec) for r in requests)
    assert isinstance(spec, ModbusTcpSpec)
    rtt = round_trip if round_trip is not None else seconds(spec.round_trip)
    return math.ceil(len(requests) / spec.concurrency) * rtt
