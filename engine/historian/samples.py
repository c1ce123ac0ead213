"""Value objects of the historian: a stored sample's row, a historised tag, time helpers.

The historian takes the runtime's ``TagValue`` objects as they are (anything with ``tag``,
``value``, ``quality`` and ``ts``) so it never imports :mod:`engine.scada`; inside, an
instant is an integer count of microseconds since 1970-01-01 UTC.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Protocol

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
US = 1_000_000
MINUTE_US = 60 * US
HOUR_US = 3600 * US
DAY_US = 86400 * US
#: quality codes as stored (the runtime's ``Quality`` enum values) and their names
QUALITY_NAMES = {0: "bad", 1: "uncertain", 2: "good"}
KINDS = ("number", "bool", "text")

Row = tuple[int, float | None, str | None, int]
"""``(ts_us, value, text, quality)``: one stored sample of one tag."""


class SampleLike(Protocol):
    """What the historian reads from a runtime value (``engine.scada.types.TagValue``)."""

    @property
    def tag(self) -> str: ...

    @property
    def value(self) -> Any: ...

    @property
    def quality(self) -> Any: ...

    @property
    def ts(self) -> dt.datetime: ...


@dataclass(frozen=True, slots=True)
class Sample:
    """A sample for tests, tools and replays: the same attributes as a runtime ``TagValue``."""

    tag: str
    ts: dt.datetime
    value: bool | int | float | str | None
    quality: int = 2


@dataclass(frozen=True, slots=True)
class HistTag:
    """A row of ``campo_history_tag``."""

    id: int
    path: str
    site: str
    kind: str
    unit: str | None
    retention_days: float
    compaction_days: float
    retired: bool = False


def to_us(ts: dt.datetime) -> int:
    """Microseconds since 1970 of an aware (or UTC-naive) datetime, exactly."""
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=dt.UTC)
    return round(ts.timestamp() * US)


def from_us(us: int) -> dt.datetime:
    """The UTC datetime of ``us`` microseconds since 1970."""
    return EPOCH + dt.timedelta(microseconds=us)


def iso(us: int) -> str:
    """ISO 8601 text of an instant (UTC, ``Z``)."""
    return from_us(us).isoformat().replace("+00:00", "Z")


def split_value(value: Any, kind: str) -> tuple[float | None, str | None]:
    """A runtime value as the ``(value, text)`` columns of a sample row."""
    if value is None:
        return None, None
    if isinstance(value, bool):
        return (1.0 if value else 0.0), None
    if isinstance(value, (int, float)):
        return float(value), None
    return None, str(value)


def join_value(value: float | None, text: str | None, kind: str) -> Any:
    """The value of a stored row as the tag's kind reads it."""
    if text is not None:
        return text
    if value is None:
        return None
    if kind == "bool":
        return value != 0.0
    return value


def kind_of(data_type: str | None, value: Any = None) -> str:
    """The stored kind of a tag from its data type (or, for untyped tags, a first value)."""
    if data_type == "bool" or (data_type is None and isinstance(value, bool)):
        return "bool"
    if data_type == "string" or (data_type is None and isinstance(value, str)):
        return "text"
    return "number"
