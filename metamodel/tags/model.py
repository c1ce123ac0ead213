"""The resolved tag model: every template instance expanded into plain, located tags.

:func:`metamodel.tags.load_tags` builds one :class:`TagModel`. Nothing here refers to the
YAML shapes of :mod:`metamodel.tags.spec` except :attr:`Device.spec` (the validated device
options, already free of ``${parameters}``); the engine reads only these dataclasses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import Location, Problem
from ..spec import Labels
from .addressing import ModbusAddress, MqttAddress, OpcUaAddress
from .history import SiteHistory
from .patterns import compile_pattern
from .spec import ModbusRtuSpec, ModbusTcpSpec, MqttSpec, OpcUaSpec, seconds

Address = ModbusAddress | OpcUaAddress | MqttAddress
DeviceSpecs = ModbusTcpSpec | ModbusRtuSpec | OpcUaSpec | MqttSpec


@dataclass(frozen=True, slots=True)
class Scaling:
    """``eng = raw * factor + offset``; ``eng_range`` from raw/eng ranges, kept if ``clamp``."""

    factor: float
    offset: float
    #: the engineering range (lo, hi) when the scale was given as raw and eng ranges
    eng_range: tuple[float, float] | None = None
    clamp: bool = False

    def to_eng(self, raw: float) -> float:
        """Engineering value of ``raw`` (unclamped)."""
        return raw * self.factor + self.offset

    def to_raw(self, eng: float) -> float:
        """Raw value that scales to ``eng``."""
        return (eng - self.offset) / self.factor

    @property
    def span(self) -> float | None:
        return self.eng_range[1] - self.eng_range[0] if self.eng_range else None


@dataclass(frozen=True, slots=True)
class ScanClass:
    """A named scan rate."""

    name: str
    period: float
    location: Location
    description: str | None = None


@dataclass(frozen=True, slots=True)
class Device:
    """A device of a site: its validated options and where it was declared."""

    site: str
    name: str
    spec: DeviceSpecs
    location: Location

    @property
    def qualname(self) -> str:
        return f"{self.site}.{self.name}"

    @property
    def type(self) -> str:
        return self.spec.type

    @property
    def enabled(self) -> bool:
        return self.spec.enabled

    @property
    def timeout(self) -> float:
        """Seconds one request may take."""
        return seconds(self.spec.timeout)

    @property
    def reconnect_delays(self) -> tuple[float, float]:
        """First and largest wait between reconnection attempts, in seconds."""
        return seconds(self.spec.reconnect_delay), seconds(self.spec.reconnect_delay_max)


@dataclass(frozen=True, slots=True)
class Binding:
    """The ERP record an instance stands for (``showcase.asset`` whose ``code`` is ``W1``)."""

    entity: str
    key: str
    value: str
    #: where ``entity`` and ``key`` are written (for the project's cross-checks)
    entity_at: Location | None = field(default=None, compare=False, repr=False)
    key_at: Location | None = field(default=None, compare=False, repr=False)

    def __str__(self) -> str:
        return f"{self.entity}[{self.key}={self.value}]"


@dataclass(frozen=True, slots=True)
class Template:
    """A template's name, parameters and the place it was defined."""

    name: str
    parameters: tuple[str, ...]
    tags: tuple[str, ...]
    location: Location
    #: the file, for ``<template>.dumps/`` beside it
    file: str


@dataclass(frozen=True, slots=True)
class Instance:
    """One asset: a template bound to a device, unit id, base address and parameters."""

    path: str
    site: str
    template: str
    device: str
    unit_id: int | None
    base: int
    params: tuple[tuple[str, str], ...]
    binding: Binding | None
    location: Location


@dataclass(frozen=True, slots=True)
class Tag:
    """One tag, fully resolved: device, address, data type, scaling, deadband, write rules."""

    path: str
    site: str
    #: qualified device name (``site.device``)
    device: str
    device_type: str
    address: Address
    #: None: as the source gives it (OPC-UA and MQTT values arrive typed)
    data_type: str | None
    length: int | None
    byte_order: str
    word_order: str
    scaling: Scaling | None
    unit: str | None
    label: Labels | None
    description: str | None
    range: tuple[float, float] | None
    #: absolute engineering-unit deadband; 0 publishes every change
    deadband: float
    scan_class: str
    period: float
    writable: bool
    write_roles: frozenset[str]
    write_min: float | None
    write_max: float | None
    location: Location
    instance: str | None = None
    template: str | None = None
    binding: Binding | None = None
    #: history kept this many days, compacted after this many (None: the site's or engine's)
    retention_days: float | None = None
    compaction_days: float | None = None
    #: former full paths of the tag (``renamed_from``), most recent first
    renamed_from: tuple[str, ...] = ()

    @property
    def modbus(self) -> ModbusAddress:
        """The Modbus address (TypeError for other devices)."""
        if not isinstance(self.address, ModbusAddress):
            raise TypeError(f"tag '{self.path}' is not a Modbus tag")
        return self.address

    def describe(self) -> dict[str, Any]:
        """A JSON-friendly summary (``campo tags expand --json``)."""
        out: dict[str, Any] = {
            "path": self.path, "device": self.device, "address": str(self.address),
            "type": self.data_type, "scan_class": self.scan_class,
        }
        if self.length:
            out["length"] = self.length
        if isinstance(self.address, ModbusAddress) and not self.address.is_bits and \
                self.data_type != "bool":
            out["order"] = f"{self.byte_order}/{self.word_order}"
        if self.scaling:
            out["scale"] = {"factor": self.scaling.factor, "offset": self.scaling.offset}
            if self.scaling.clamp and self.scaling.eng_range:
                out["scale"]["clamp"] = list(self.scaling.eng_range)
        if self.unit:
            out["unit"] = self.unit
        if self.deadband:
            out["deadband"] = self.deadband
        if self.writable:
            out["writable"] = sorted(self.write_roles)
            if self.write_min is not None or self.write_max is not None:
                out["limits"] = [self.write_min, self.write_max]
        if self.instance:
            out["instance"] = self.instance
            out["template"] = self.template
        if self.binding:
            out["bind"] = str(self.binding)
        return out


@dataclass(frozen=True)
class TagModel:
    """Every scan class, template, device, instance and tag of a project's ``tags/``."""

    scan_classes: dict[str, ScanClass]
    templates: dict[str, Template]
    sites: dict[str, Location]
    devices: dict[str, Device]
    instances: dict[str, Instance]
    #: tags by path, sorted
    tags: dict[str, Tag]
    #: site parameter values after overrides: site -> name -> value
    parameters: dict[str, dict[str, Any]] = field(default_factory=dict)
    root: str = "."
    #: alarm rules by alarm path (``metamodel.tags.alarms.AlarmRule``), sorted
    alarms: dict[str, Any] = field(default_factory=dict)
    #: what is allowed but worth a look (the priority mix of a site's alarms)
    warnings: tuple[Problem, ...] = ()
    #: each site's ``alarm_settings:`` (``metamodel.tags.alarmspec.SiteAlarmsSpec``)
    alarm_settings: dict[str, Any] = field(default_factory=dict)
    #: each site's history settings (offline days, production day, default ages)
    history: dict[str, SiteHistory] = field(default_factory=dict)

    def tags_of(self, device: str) -> list[Tag]:
        """Tags of the device named ``site.device``, by path."""
        return [t for t in self.tags.values() if t.device == device]

    def tags_for(self, entity: str, value: str) -> list[Tag]:
        """Tags of the instances bound to the ERP record of ``entity`` identified by ``value``."""
        return [t for t in self.tags.values()
                if t.binding is not None and t.binding.entity == entity
                and t.binding.value == str(value)]

    def select(self, pattern: str) -> list[Tag]:
        """Tags whose path matches ``pattern`` (``pad7.*.pip``, ``pad7.**``)."""
        match = compile_pattern(pattern).match
        return [t for t in self.tags.values() if match(t.path)]

    def only_site(self, site: str) -> TagModel:
        """The same model restricted to one site (KeyError when unknown)."""
        if site not in self.sites:
            raise KeyError(site)
        return TagModel(
            scan_classes=self.scan_classes, templates=self.templates,
            sites={site: self.sites[site]},
            devices={k: d for k, d in self.devices.items() if d.site == site},
            instances={k: i for k, i in self.instances.items() if i.site == site},
            tags={k: t for k, t in self.tags.items() if t.site == site},
            parameters={site: self.parameters.get(site, {})}, root=self.root,
            alarms={k: a for k, a in self.alarms.items() if a.site == site},
            warnings=self.warnings,
            alarm_settings={k: v for k, v in self.alarm_settings.items() if k == site},
            history={site: self.history[site]} if site in self.history else {})


__all__ = ["Address", "Binding", "Device", "Instance", "ScanClass", "Scaling", "Tag",
           "TagModel", "Template", "compile_pattern"]
