"""Which driver serves which device type: a small registry of factories.

A factory is two functions: ``create(device) -> Driver`` builds a driver for one device of
the tag model (:class:`metamodel.tags.Device`), and ``point(tag) -> PointRef`` turns one of
its tags (:class:`metamodel.tags.Tag`) into the point the driver reads and writes (its
``address`` is whatever that driver wants: a :class:`~metamodel.tags.ModbusAddress`, an
``OpcUaPoint``...). The built-in device types are listed in :data:`BUILTIN`, each with a
loader that imports its driver module on first use (explicit imports, visible to readers and
to import-linter; lazy because asyncua and pymodbus are slow to import and a site may use
neither). Anything else registers itself::

    registry = default_registry()
    registry.register("opcua", create=my_create, point=my_point)
    runtime = Runtime(model, registry=registry)

A device type whose driver cannot be imported is not an error at load time: the runtime
marks its tags BAD with the reason and keeps the other devices running.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from metamodel.tags import Device, Tag

from .types import Driver, PointRef


@dataclass(frozen=True, slots=True)
class DriverFactory:
    """How to build a driver for a device type and the points of its tags."""

    create: Callable[[Device], Driver]
    point: Callable[[Tag], PointRef]


#: imports a driver module and returns its factory
Loader = Callable[[], DriverFactory]


def _modbus() -> DriverFactory:
    from .drivers import modbus

    return DriverFactory(modbus.create, modbus.point)


def _opcua() -> DriverFactory:
    from .drivers import opcua

    return DriverFactory(opcua.create, opcua.point)


def _mqtt() -> DriverFactory:
    from .drivers import mqtt

    return DriverFactory(mqtt.create, mqtt.point)


#: device type -> loader of its built-in driver
BUILTIN: dict[str, Loader] = {
    "modbus_tcp": _modbus,
    "modbus_rtu": _modbus,
    "opcua": _opcua,
    "mqtt": _mqtt,
}


class NoDriver(LookupError):
    """No usable factory for a device type; the message says why."""


class DriverRegistry:
    """Factories by device type, loaded on first use."""

    def __init__(self, loaders: Mapping[str, Loader] = BUILTIN) -> None:
        self._loaders = dict(loaders)
        self._factories: dict[str, DriverFactory] = {}

    def register(self, device_type: str, create: Callable[[Device], Driver],
                 point: Callable[[Tag], PointRef]) -> None:
        """Serve ``device_type`` with ``create`` and ``point`` (replaces any previous one)."""
        self._factories[device_type] = DriverFactory(create, point)

    def get(self, device_type: str) -> DriverFactory:
        """The factory for ``device_type``; :class:`NoDriver` when there is none."""
        if device_type in self._factories:
            return self._factories[device_type]
        loader = self._loaders.get(device_type)
        if loader is None:
            raise NoDriver(f"no driver is registered for device type '{device_type}'")
        try:
            factory = loader()
        except ImportError as exc:  # the driver's library (or module) is not installed
            missing = f"module {exc.name}" if exc.name else "its module"
            raise NoDriver(f"no driver for device type '{device_type}': {missing} cannot be "
                           f"imported ({exc})") from None
        self._factories[device_type] = factory
        return factory


def default_registry() -> DriverRegistry:
    """A registry of the built-in drivers."""
    return DriverRegistry()
