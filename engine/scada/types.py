"""Value objects shared by drivers, the tag pipeline and the bus.

Drivers never raise library exceptions to their callers: a failed read becomes a
:class:`Reading` with ``quality=Quality.BAD`` and a reason, like Home Assistant's
``low_level_pb_call`` returning ``None``.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

Value = bool | int | float | str | None


class Quality(enum.IntEnum):
    """OPC-style quality, ordered so that ``min()`` of qualities is the worst."""

    BAD = 0
    UNCERTAIN = 1
    GOOD = 2


@dataclass(frozen=True, slots=True)
class PointRef:
    """What a driver needs to read or write one point: the tag path and its address."""

    tag: str
    #: driver-specific address object (e.g. a Modbus register range, an OPC-UA node id)
    address: Any


@dataclass(frozen=True, slots=True)
class Reading:
    """A raw value from a device, before scaling, with its quality and timestamps."""

    value: Any
    quality: Quality
    source_ts: dt.datetime | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class TagValue:
    """A tag's engineering value after the pipeline, as subscribers see it."""

    tag: str
    value: Value
    quality: Quality
    ts: dt.datetime
    reason: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


class Driver(Protocol):
    """A device connection. Implementations live in :mod:`engine.scada.drivers`."""

    async def connect(self) -> None: ...

    async def read(self, points: Sequence[PointRef]) -> Mapping[str, Reading]: ...

    async def write(self, point: PointRef, value: Value) -> None: ...

    async def close(self) -> None: ...


class DeviceUnavailable(Exception):
    """Raised by a driver's ``connect``/``read``/``write`` when the device cannot be reached.

    The runtime then marks every tag of the device BAD with this message as the reason,
    closes the driver and reconnects with exponential backoff. A driver that can still
    talk to the device returns per-point BAD readings instead of raising.
    """


class WriteFailed(Exception):
    """Raised by a driver's ``write`` when the device refused or did not confirm a write."""
