"""``campo tags plan|expand|check``: look at the tag model without starting the runtime.

- ``plan [SITE]``: per device and scan class, the read requests the runtime will send
  (function, unit, start, count, tags) and the estimated bus time; exit 1 when a scan class
  cannot fit its period with the margin, or the line is over-committed;
- ``expand [SITE]``: every tag a site expands to, and the ERP bindings, sorted (stable output
  for reviews and diffs);
- ``check [TEMPLATE...]``: decode the captured register dumps beside each template
  (``<template>.dumps/*.yaml``) and compare them with the values they expect;
- ``schema``: the JSON Schema of a tags file, for editor completion.

``campo simulate`` is in :mod:`engine.scada.simulate_command`; more ``tags`` subcommands go
in :data:`TAGS_COMMANDS` (name -> (help, add_arguments, handler)).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from metamodel import DefinitionError, Model
from metamodel.project import load_model_tags
from metamodel.tags import Device, TagModel, load_tags
from metamodel.tags.spec import ModbusRtuSpec, ModbusTcpSpec, seconds

from .planner import Limits, Request, bus_seconds, plan_tags

Handler = Callable[[argparse.Namespace], int]


def _user_error(message: str, code: int = 1) -> Exception:
    from engine.errors import UserError

    return UserError(message, code)


def _project(args: argparse.Namespace) -> Path:
    from engine.options import settings_from

    return Path(settings_from(args).project)


def _overrides(values: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values:
        if "=" not in item:
            raise _user_error(f"--set {item}: write NAME=VALUE, e.g. "
                              "--set sim_pad.modbus_port=5021", 2)
        key, value = item.split("=", 1)
        out[key.strip()] = value
    return out


def _modules(root: Path) -> Model | None:
    """The project's modules (None when they do not load: ``campo validate`` says why)."""
    from metamodel import load

    try:
        return load(root)
    except DefinitionError:
        return None


def load_for_command(args: argparse.Namespace) -> TagModel:
    """The project's tag model (only ``args.site`` when given) or a UserError; checked
    against the modules (write roles, bindings) when they load."""
    root = _project(args)
    params, modules = _overrides(args.set or []), _modules(root)
    try:
        if modules is None or not modules.modules:  # no modules: write roles only
            model = load_tags(root, params=params, environ=os.environ,
                              roles=None if modules is None else modules.roles)
        else:
            found = load_model_tags(root, modules, params=params, environ=os.environ)
            model = found if found is not None else load_tags(root)
    except DefinitionError as err:
        raise _user_error(err.format() + f"\n{len(err.problems)} problem(s) found") from None
    site = getattr(args, "site", None)
    if site:
        try:
            model = model.only_site(site)
        except KeyError:
            from metamodel.errors import expected_one_of

            raise _user_error(f"unknown site '{site}'; "
                              + expected_one_of(site, model.sites)) from None
    return model


# --------------------------------------------------------------------------- plan


def _measure(device: Device, request: Request, n: int = 20) -> float | None:
    """Median round trip of ``request`` on a Modbus TCP device (None when unreachable)."""
    from .drivers.modbus import ModbusDriver
    from .types import DeviceUnavailable, PointRef

    async def run() -> float | None:
        driver = ModbusDriver(device)
        try:
            await driver.connect()
        except DeviceUnavailable:
            return None
        from metamodel.tags import ModbusAddress

        points = [PointRef("probe", ModbusAddress(request.function, request.unit_id,
                                                   request.start, request.count))]
        times = []
        try:
            for _ in range(n):
                t0 = time.perf_counter()
                await driver.read(points)
                times.append(time.perf_counter() - t0)
        finally:
            await driver.close()
        return statistics.median(times)
    return asyncio.run(run())


@dataclass
class ClassPlan:
    """One scan class of a device: its requests and their bus time per scan."""

    scan_class: str
    period: float
    requests: list[Request]
    busy: float


@dataclass
class DevicePlan:
    """A Modbus device's plan: scan classes, bus load and what does not fit."""

    name: str
    device: Device
    round_trip: float | None
    classes: list[ClassPlan]
    load: float = 0.0
    problems: list[str] = field(default_factory=list)


def plan_device(name: str, device: Device, tags: list[Any], round_trip: float | None,
                margin: float = 0.2) -> DevicePlan:
    """The requests and bus time of a Modbus device's scan classes, and the problems
    (the words ``campo tags plan`` prints and ``campo serve`` logs at start)."""
    by_class: dict[tuple[float, str], list[Any]] = {}
    for t in tags:
        by_class.setdefault((t.period, t.scan_class), []).append(t)
    out = DevicePlan(name, device, round_trip, [])
    share = 100 * (1 - margin)
    for (period, scan_class), members in sorted(by_class.items()):
        reqs = plan_tags(members, Limits.of(device))
        busy = bus_seconds(reqs, device, round_trip)
        out.classes.append(ClassPlan(scan_class, period, reqs, busy))
        out.load += busy / period
        if busy > period * (1 - margin):
            out.problems.append(f"device {name}: scan class '{scan_class}' needs about "
                                f"{busy * 1000:.0f} ms per scan, more than {share:.0f}% "
                                f"of its {period:g} s period")
    if out.load > 1 - margin:
        what = "line" if isinstance(device.spec, ModbusRtuSpec) else "connection"
        out.problems.append(f"device {name}: the scan classes together keep the {what} "
                            f"busy {100 * out.load:.0f}% of the time (limit {share:.0f}%)")
    return out


def scan_plan_problems(model: TagModel, margin: float = 0.2) -> dict[str, list[str]]:
    """What ``campo tags plan`` rejects in ``model`` with its assumed round trips, by device
    (enabled Modbus devices with problems only; empty when every scan class fits)."""
    problems: dict[str, list[str]] = {}
    for name, device in model.devices.items():
        tags = model.tags_of(name)
        spec = device.spec
        if not tags or not device.enabled or not isinstance(spec, (ModbusTcpSpec,
                                                                   ModbusRtuSpec)):
            continue
        rtt = seconds(spec.round_trip) if isinstance(spec, ModbusTcpSpec) else None
        found = plan_device(name, device, tags, rtt, margin).problems
        if found:
            problems[name] = found
    return problems


#: the advice ``campo tags plan`` and ``campo serve`` give with the problems
PLAN_HINT = ("slow the scan class, raise the baud rate or max_gap, add connections "
             "(concurrency) or split the line")


def _plan(args: argparse.Namespace) -> int:
    model = load_for_command(args)
    margin = args.margin
    failures: list[str] = []
    for name, device in model.devices.items():
        tags = model.tags_of(name)
        if not tags:
            continue
        site_prefix = device.site + "."
        spec = device.spec
        if not isinstance(spec, (ModbusTcpSpec, ModbusRtuSpec)):
            classes = sorted({t.scan_class for t in tags})
            print(f"device {name} ({device.type}): {len(tags)} tag(s) in scan class(es) "
                  f"{', '.join(classes)}; the driver subscribes or polls them itself")
            continue
        rtt = None
        if isinstance(spec, ModbusTcpSpec):
            how = "assumed"
            rtt = seconds(spec.round_trip) if args.round_trip is None else args.round_trip / 1000
            if args.measure:
                first = plan_device(name, device, tags, rtt, margin).classes[0].requests[0]
                measured = _measure(device, first)
                if measured is None:
                    print(f"device {name}: not reachable, using the assumed round trip",
                          file=sys.stderr)
                else:
                    rtt, how = measured, "measured"
            head = (f"modbus_tcp {spec.host}:{spec.port}, concurrency {spec.concurrency}, "
                    f"round trip {rtt * 1000:.1f} ms {how}")
        else:
            head = (f"modbus_rtu {spec.port} {spec.baudrate} {spec.bytesize}{spec.parity}"
                    f"{spec.stopbits}, turnaround {seconds(spec.turnaround) * 1000:g} ms")
        if not device.enabled:
            head += ", disabled"
        print(f"device {name} ({head})")
        plan = plan_device(name, device, tags, rtt, margin)
        for c in plan.classes:
            n_tags = sum(len(r.slots) for r in c.requests)
            print(f"  {c.scan_class} ({c.period:g} s): {len(c.requests)} request(s) for "
                  f"{n_tags} tag(s), about {c.busy * 1000:.1f} ms per scan "
                  f"({100 * c.busy / c.period:.1f}% of the period)")
            for r in c.requests:
                names = ", ".join(s.tag.removeprefix(site_prefix) for s in r.slots)
                print(f"    {r.describe():<32} {names}")
        print(f"  bus load: {100 * plan.load:.1f}%")
        failures += plan.problems
    for f in failures:
        print(f"error: {f}", file=sys.stderr)
    if failures:
        print(f"hint: {PLAN_HINT}", file=sys.stderr)
    _history_plan(model, args)
    return 1 if failures else 0


def _history_plan(model: TagModel, args: argparse.Namespace) -> None:
    """The spool each site's ``offline_days`` need (a warning when it cannot be held)."""
    import shutil

    from engine.historian.planning import describe, spool_estimate
    from engine.options import settings_from

    settings = settings_from(args)
    probe = settings.resolved_spool_dir()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    for est in spool_estimate(model):
        line, warnings = describe(est, settings.history_spool_max_bytes, free)
        print(line)
        for w in warnings:
            print(f"warning: {w}", file=sys.stderr)


# --------------------------------------------------------------------------- expand


def _expand(args: argparse.Namespace) -> int:
    model = load_for_command(args)
    if args.json:
        out = {"tags": [t.describe() for t in model.tags.values()],
               "bindings": _bindings(model)}
        print(json.dumps(out, indent=2, sort_keys=True, ensure_ascii=False))
        return 0
    for t in model.tags.values():
        d = t.describe()
        extra = " ".join(f"{k}={json.dumps(d[k], ensure_ascii=False)}" for k in sorted(d)
                         if k not in ("path", "device", "address", "type", "scan_class",
                                      "instance", "template", "bind"))
        print(f"{t.path}  {t.device}  {t.address}  {t.data_type or 'native'}  "
              f"{t.scan_class}{'  ' + extra if extra else ''}")
    bindings = _bindings(model)
    if bindings:
        print()
        for record, instances in bindings.items():
            print(f"{record}  {' '.join(instances)}")
    print(f"\n{len(model.tags)} tag(s), {len(model.instances)} instance(s), "
          f"{len(model.devices)} device(s)", file=sys.stderr)
    return 0


def _bindings(model: TagModel) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for inst in model.instances.values():
        if inst.binding is not None:
            out.setdefault(str(inst.binding), []).append(inst.path)
    return {k: sorted(v) for k, v in sorted(out.items())}


# --------------------------------------------------------------------------- check


def _check(args: argparse.Namespace) -> int:
    from .dumps import check_template

    model = load_for_command(args)
    names = args.templates or sorted(model.templates)
    bad = 0
    seen = 0
    for name in names:
        if name not in model.templates:
            from metamodel.errors import expected_one_of

            raise _user_error(f"unknown template '{name}'; "
                              + expected_one_of(name, model.templates))
        try:
            results = check_template(model, name)
        except DefinitionError as err:
            raise _user_error(err.format()) from None
        for r in results:
            seen += 1
            if r.mismatches:
                bad += 1
                for m in r.mismatches:
                    print(str(m), file=sys.stderr)
                print(f"FAIL {r.file}: {len(r.mismatches)} mismatch(es)")
            else:
                print(f"ok   {r.file}: {r.checked} tag(s) decode as expected")
    if not seen:
        print("no dumps found (put them in tags/templates/<template>.dumps/*.yaml)")
    return 1 if bad else 0


# --------------------------------------------------------------------------- schema


def _schema(args: argparse.Namespace) -> int:
    from metamodel.tags.schema import tags_json_schema

    print(json.dumps(tags_json_schema(), indent=2, ensure_ascii=False))
    return 0


# --------------------------------------------------------------------------- wiring


def _add_common(p: argparse.ArgumentParser) -> None:
    from engine.options import add_project_option

    add_project_option(p)
    p.add_argument("--set", action="append", metavar="NAME=VALUE",
                   help="override a site parameter (site.name=value or name=value)")


def _plan_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("site", nargs="?", help="only this site")
    p.add_argument("--margin", type=float, default=0.2,
                   help="share of each period kept free (default 0.2)")
    p.add_argument("--round-trip", type=float, default=None, metavar="MS",
                   help="round trip of one Modbus TCP request in ms (default: the device's)")
    p.add_argument("--measure", action="store_true",
                   help="measure the round trip on each reachable Modbus TCP device")


def _expand_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("site", nargs="?", help="only this site")
    p.add_argument("--json", action="store_true", help="print JSON")


def _check_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("templates", nargs="*", metavar="TEMPLATE", help="default: every template")


#: ``campo tags <name>``: (help, add_arguments, handler)
TAGS_COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Handler]] = {
    "plan": ("show the Modbus requests per device and scan class, and their bus time",
             _plan_args, _plan),
    "expand": ("list every tag and binding a site expands to", _expand_args, _expand),
    "check": ("decode captured register dumps and compare with expected values",
              _check_args, _check),
    "schema": ("print the JSON Schema of a tags file (for editor completion)",
               lambda p: None, _schema),
}


def register(subparsers: Any) -> None:
    """Add ``campo tags ...``."""
    tags = subparsers.add_parser("tags", help="inspect the tag model (plan, expand, check)")
    sub = tags.add_subparsers(dest="tags_command", metavar="SUBCOMMAND")
    for name, (text, add_args, handler) in TAGS_COMMANDS.items():
        p = sub.add_parser(name, help=text)
        _add_common(p)
        add_args(p)
        p.set_defaults(handler=handler)
    tags.set_defaults(handler=lambda args: (tags.print_help(), 2)[1])
