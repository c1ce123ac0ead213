"""History settings in the tag language: how long a tag's history is kept, when it is
compacted, how long a site must survive offline, and tags' former names.

A site says ``history: {retention: 1y, compaction: 7d, offline_days: 30, day_start_hour: 6,
timezone: America/Argentina/Buenos_Aires}``; a template or one tag may override ``retention`` and
``compaction`` (``history: {retention: 30d}`` on a 1 s vibration tag). A tag renamed in YAML
names its old name in ``renamed_from`` (its name inside the template, or its path below the
site), an instance its old instance path, so that the historian keeps the history under the
new path.

Resolution (most specific first): the tag's ``history``, its template's, its site's; what
none gives stays None and the engine's defaults apply (365 days, 7 days).
"""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass
from typing import Annotated

from pydantic import Field, StringConstraints, field_validator

from ..spec import Spec

#: an age: ``36h``, ``30d``, ``2w``, ``1y`` (365 days), or a number of days
AGE_PATTERN = r"^\s*\d+(\.\d+)?\s*(h|d|w|y)\s*$"
Age = Annotated[float, Field(gt=0)] | Annotated[str, StringConstraints(pattern=AGE_PATTERN)]
_DAYS = {"h": 1 / 24, "d": 1.0, "w": 7.0, "y": 365.0}


def days(value: float | str) -> float:
    """An :data:`Age` in days (``'1y'`` -> 365.0)."""
    if isinstance(value, (int, float)):
        return float(value)
    m = re.match(r"^\s*(\d+(?:\.\d+)?)\s*(h|d|w|y)\s*$", value)
    if not m:
        raise ValueError(f"'{value}' is not an age such as 36h, 30d, 2w, 1y")
    return float(m.group(1)) * _DAYS[m.group(2)]


class HistorySpec(Spec):
    """``history:`` of a template or a tag."""

    #: samples older than this are deleted
    retention: Age | None = None
    #: samples older than this are rewritten into a compact form (PostgreSQL)
    compaction: Age | None = None


class SiteHistorySpec(HistorySpec):
    """``history:`` of a site: the defaults of its tags, and the site's own settings."""

    #: days the site must keep samples while its database is unreachable (spool sizing)
    offline_days: Annotated[float, Field(ge=0, le=3650)] | None = None
    #: hour (0-23, in ``timezone``) at which the production day starts
    day_start_hour: Annotated[int, Field(ge=0, le=23)] = 0
    #: IANA time zone of the site's day (default UTC)
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone '{value}' (write an IANA name such as "
                             "America/Argentina/Buenos_Aires or UTC)") from None
        return value


@dataclass(frozen=True, slots=True)
class SiteHistory:
    """A site's resolved history settings."""

    retention_days: float | None = None
    compaction_days: float | None = None
    offline_days: float | None = None
    day_start_hour: int = 0
    timezone: str = "UTC"

    @classmethod
    def of(cls, spec: SiteHistorySpec | None) -> SiteHistory:
        """From a site's ``history:`` (defaults when it has none)."""
        if spec is None:
            return cls()
        return cls(None if spec.retention is None else days(spec.retention),
                   None if spec.compaction is None else days(spec.compaction),
                   spec.offline_days, spec.day_start_hour, spec.timezone)


def ages(*specs: HistorySpec | SiteHistory | None) -> tuple[float | None, float | None]:
    """``(retention_days, compaction_days)``: the first given of each, most specific first."""
    retention = compaction = None
    for spec in specs:
        if spec is None:
            continue
        if isinstance(spec, SiteHistory):
            r, c = spec.retention_days, spec.compaction_days
        else:
            r = None if spec.retention is None else days(spec.retention)
            c = None if spec.compaction is None else days(spec.compaction)
        retention = r if retention is None else retention
        compaction = c if compaction is None else compaction
    return retention, compaction
