"""Which driver serves which device type: a small registry of factories.

A factory is two functions: ``create(device) -> Driver`` builds a driver for one device of
the tag model (:class:`metamodel.tags.Device`), and ``point(tag) -> PointRef`` turns one of
its tags (:class:`metamodel.tags.Tag`) into the point the driver reads and writes (its
``address`` is whatever that driver wants: a :class:`~metamodel.tags.ModbusAddress`, an
``OpcUaPoint``...). Built-in device types are looked up lazily by module name: the module
``engine.scada.drivers.<name>`` must define module-level ``create`` and ``point``. Anything
else registers itself::

    registry = default_registry()
    registry.register("opcua", create=my_create, point=my_point)
    runtime = Runtime(model, registry=registry)

A device type whose module is missing, or lacks the two functions, is not an error at load
time: the runtime marks its tags BAD with the reason and keeps the other devices running.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from metamodel.tags import Device, Tag

from .types import Driver, PointRef

#: device type -> module that provides ``create(device)`` and ``point(tag)``
BUILTIN: dict[str, str] = {
    "modbus_tcp": "engine.scada.drivers.modbus",
    "modbus_rtu": "engine.scada.drivers.modbus",
    "opcua": "engine.scada.drivers.opcua",
    "mqtt": "engine.scada.drivers.mqtt",
}


@dataclass(frozen=True, slots=True)
class DriverFactory:
    """How to build a driver for a device type and the points of its tags."""

    create: Callable[[Device], Driver]
    point: Callable[[Tag], PointRef]


class NoDriver(LookupError):
    """No usable factory for a device type; the message says why."""


class DriverRegistry:
    """Factories by device type, imported on first use."""

    def __init__(self, modules: Mapping[str, str] = BUILTIN) -> None:
        self._modules = dict(modules)
        self._factories: dict[str, DriverFactory] = {}

    def register(self, device_type: str, create: Callable[[Device], Driver],
                 point: Callable[[Tag], PointRef]) -> None:
        """Serve ``device_type`` with ``create`` and ``point`` (replaces any previous one)."""
        self._factories[device_type] = DriverFactory(create, point)

    def get(self, device_type: str) -> DriverFactory:
        """The factory for ``device_type``; :class:`NoDriver` when there is none."""
        if device_type in self._factories:
            return self._factories[device_type]
        name = self._modules.get(device_type)
        if name is None:
            raise NoDriver(f"no driver is registered for device type '{device_type}'")
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and name.startswith(exc.name):
                raise NoDriver(f"no driver for device type '{device_type}': module {name} "
                               "does not exist yet") from None
            raise
        create = getattr(module, "create", None)
        point = getattr(module, "point", None)
        if not callable(create) or not callable(point):
            raise NoDriver(f"no driver for device type '{device_type}': {name} does not "
                           "define create(device) and point(tag)")
        factory = DriverFactory(create, point)
        self._factories[device_type] = factory
        return factory


def default_registry() -> DriverRegistry:
    """A registry of the built-in drivers."""
    return DriverRegistry()
