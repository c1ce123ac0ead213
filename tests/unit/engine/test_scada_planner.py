"""Request coalescing is optimal: the plan's request count equals an exhaustive search's."""

from __future__ import annotations

import functools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.scada.planner import Limits, bus_seconds, optimal_runs, plan_requests
from metamodel.tags import ModbusAddress, load_tags


def hr(offset: int, count: int = 1, unit: int = 1) -> ModbusAddress:
    return ModbusAddress("holding_register", unit, offset, count)


def items(*spans: tuple[int, int]) -> list[tuple[str, ModbusAddress]]:
    return [(f"t{i}", hr(o, c)) for i, (o, c) in enumerate(spans)]


def brute_force(spans: list[tuple[int, int]], limit: int, gap: int) -> int:
    """Fewest windows covering every tag whole, each window's holes at most ``gap``.

    Independent of the planner: windows are any ranges of registers; a window serves the
    tags it contains whole; the search tries every window end for the first uncovered tag.
    """
    tags = sorted((o, o + c) for o, c in spans)

    @functools.cache
    def solve(covered: frozenset[int]) -> float:
        rest = [i for i in range(len(tags)) if i not in covered]
        if not rest:
            return 0
        first = tags[rest[0]]
        best = float("inf")
        start = first[0]
        for end in range(first[1], start + limit + 1):
            inside = [i for i in rest if tags[i][0] >= start and tags[i][1] <= end]
            used = sorted(tags[i] for i in inside)
            reach, ok = start, True
            for s, e in used:
                if s - reach > gap:
                    ok = False
                    break
                reach = max(reach, e)
            if not ok or first not in used or reach < end:
                continue  # a hole too wide, or registers read past the last tag
            best = min(best, 1 + solve(covered | frozenset(inside)))
        return best

    return int(solve(frozenset()))


@pytest.mark.parametrize("spans,limit,gap,expected", [
    ([(0, 2), (2, 2), (4, 2)], 125, 0, 1),                 # contiguous floats: one request
    ([(0, 2), (10, 2)], 125, 0, 2),                        # a hole, no gap allowed
    ([(0, 2), (10, 2)], 125, 8, 1),                        # hole of 8 <= max_gap
    ([(0, 2), (10, 2)], 125, 7, 2),                        # hole of 8 > 7
    ([(i, 1) for i in range(250)], 125, 0, 2),             # 250 registers: two full requests
    ([(i, 1) for i in range(251)], 125, 0, 3),
    ([(0, 100), (100, 50)], 125, 0, 2),
    ([(0, 4), (120, 4), (124, 1)], 125, 200, 1),           # 0..124 fits exactly
    ([(0, 4), (121, 4), (125, 1)], 125, 200, 2),
])
def test_known_layouts(spans: list[tuple[int, int]], limit: int, gap: int, expected: int) -> None:
    reqs = plan_requests(items(*spans), Limits(limit, 2000, gap, 0))
    assert len(reqs) == expected
    if len(spans) <= 12:
        assert len(reqs) == brute_force(spans, limit, gap)


def test_greedy_would_read_more_registers() -> None:
    """Fewest requests first, then fewest registers: cut at the widest hole."""
    # limit 10: runs {0..3},{6..9 | 12} vs {0..3, 6..7}{8.., 12}: both two requests
    spans = [(0, 2), (2, 2), (6, 2), (8, 2), (12, 1)]
    reqs = plan_requests(items(*spans), Limits(10, 2000, 10, 0))
    assert len(reqs) == 2
    assert sum(r.count for r in reqs) == 4 + 7  # 0..3 and 6..12, not 0..7 and 8..12


@settings(max_examples=120, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40), st.sampled_from([1, 2, 4])), min_size=1,
                max_size=8), st.integers(4, 12), st.integers(0, 6))
def test_matches_exhaustive_search(raw: list[tuple[int, int]], limit: int, gap: int) -> None:
    spans, used = [], set()
    for o, c in raw:  # keep tags apart, as the loader does
        regs = set(range(o, o + c))
        if not regs & used:
            used |= regs
            spans.append((o, c))
    reqs = plan_requests(items(*spans), Limits(limit, 2000, gap, 0))
    assert len(reqs) == brute_force(spans, limit, gap)
    for r in reqs:  # every request within the limits, every tag whole inside one request
        assert r.count <= limit
        for s in r.slots:
            assert 0 <= s.at and s.at + s.count <= r.count
    served = sorted(s.tag for r in reqs for s in r.slots)
    assert served == sorted(f"t{i}" for i in range(len(spans)))


def test_bits_tables_units_and_shared_registers() -> None:
    plan = plan_requests([
        ("a", ModbusAddress("coil", 1, 0, 1)), ("b", ModbusAddress("coil", 1, 1999, 1)),
        ("c", ModbusAddress("coil", 1, 2000, 1)), ("d", ModbusAddress("coil", 2, 0, 1)),
        ("w", hr(10)), ("w.b0", ModbusAddress("holding_register", 1, 10, 1, 0)),
        ("w.b1", ModbusAddress("holding_register", 1, 10, 1, 1)),
        ("x", ModbusAddress("input_register", 1, 10, 2)),
    ], Limits(125, 2000, 0, 5000))
    desc = [(r.function, r.unit_id, r.start, r.count, r.tags) for r in plan]
    assert desc == [
        ("coil", 1, 0, 1, ("a",)), ("coil", 1, 1999, 2, ("b", "c")),  # 3 bits, not 2001
        ("holding_register", 1, 10, 1, ("w", "w.b0", "w.b1")),
        ("input_register", 1, 10, 2, ("x",)), ("coil", 2, 0, 1, ("d",)),
    ]
    assert plan[0].code == 1 and plan[2].code == 3 and plan[3].code == 4
    assert plan[2].describe() == "fc3 unit 1 hr:40011 +1"


def test_optimal_runs_rejects_oversized_segment() -> None:
    with pytest.raises(ValueError):
        optimal_runs([0], [200], 125, 0)


def test_bus_time(project) -> None:  # type: ignore[no-untyped-def]
    root = project({
        "tags/scan_classes.yaml": "scan_classes: {fast: {period: 1s}}\n",
        "tags/sites/s.yaml": (
            "site: s\ndevices:\n"
            "  line: {type: modbus_rtu, port: /dev/null, baudrate: 9600, turnaround: 0ms}\n"
            "  tcp: {type: modbus_tcp, host: x, round_trip: 10ms, concurrency: 2}\n"
            "tags:\n"
            "  a: {device: line, address: hr:40001-40010, type: string(20), scan_class: fast}\n"
            "  b: {device: tcp, address: hr:40001, type: uint16, scan_class: fast}\n"
            "  c: {device: tcp, address: hr:40101, type: uint16, scan_class: fast}\n"
            "  d: {device: tcp, address: hr:40201, type: uint16, scan_class: fast}\n"),
    })
    model = load_tags(root)
    line = model.devices["s.line"]
    reqs = plan_requests([("a", model.tags["s.a"].modbus)])
    # 8-byte request + 25-byte response at 10 bits/char, 9600 baud, + 2 x 3.5 chars
    assert bus_seconds(reqs, line) == pytest.approx((33 + 7) * 10 / 9600)
    tcp = model.devices["s.tcp"]
    three = plan_requests([(t, model.tags[f"s.{t}"].modbus) for t in "bcd"])
    assert len(three) == 3
    assert bus_seconds(three, tcp) == pytest.approx(0.020)  # 3 requests on 2 connections
    assert bus_seconds(three, tcp, round_trip=0.001) == pytest.approx(0.002)
