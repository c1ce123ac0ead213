"""How much spool a site needs to survive ``offline_days`` without its database.

An estimate from the tag model alone (``campo tags plan``, ``campo serve`` at start-up):
each tag is read once per scan-class period; the pipeline publishes a change only, so the
estimate assumes that

- a number without a deadband changes at every scan (the worst case: noise);
- a number with a deadband publishes at one scan in :data:`DEADBAND_SHARE` (a steady
  process moving less than its deadband most of the time);
- a bool or a string changes at one scan in :data:`STATE_SHARE`;

and that a spooled sample costs :data:`BYTES_PER_SAMPLE` (the spool's record: path index,
time, flags, value, plus record and path-name overhead). The real rate shows in
``GET /api/history/status`` (``rows_per_second``) once the site runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

DEADBAND_SHARE = 0.2
STATE_SHARE = 0.01
BYTES_PER_SAMPLE = 23.0


@dataclass(frozen=True, slots=True)
class SpoolEstimate:
    """One site's expected change rate and the spool its ``offline_days`` need."""

    site: str
    tags: int
    samples_per_second: float
    offline_days: float | None

    @property
    def bytes(self) -> int:
        """Spool bytes for ``offline_days`` (0 when the site declares none)."""
        days = self.offline_days or 0.0
        return int(self.samples_per_second * days * 86400 * BYTES_PER_SAMPLE)


def change_rate(tag: Any) -> float:
    """Expected published changes per second of one tag (see the module docstring)."""
    per_scan = 1.0 / tag.period if tag.period > 0 else 0.0
    if tag.data_type in ("bool", "string"):
        return per_scan * STATE_SHARE
    return per_scan * (DEADBAND_SHARE if tag.deadband else 1.0)


def spool_estimate(model: Any, sites: Iterable[str] | None = None) -> list[SpoolEstimate]:
    """Per site of a :class:`metamodel.tags.TagModel`: rate and spool for ``offline_days``."""
    out = []
    for site in sorted(sites if sites is not None else model.sites):
        tags = [t for t in model.tags.values() if t.site == site]
        hist = getattr(model, "history", {}).get(site)
        out.append(SpoolEstimate(site, len(tags), sum(change_rate(t) for t in tags),
                                 None if hist is None else hist.offline_days))
    return out


def describe(est: SpoolEstimate, bound: int, free: int | None) -> tuple[str, list[str]]:
    """A line for ``campo tags plan`` and the warnings that go with it."""
    line = (f"history: site {est.site}: {est.tags} tag(s), about "
            f"{est.samples_per_second:,.1f} change(s)/s")
    warnings = []
    if est.offline_days:
        line += (f"; {est.offline_days:g} day(s) offline need about {_size(est.bytes)} of "
                 f"spool (bound {_size(bound)})")
        if est.bytes > bound:
            warnings.append(f"site {est.site}: {est.offline_days:g} day(s) offline need about "
                            f"{_size(est.bytes)} of spool, more than the bound of "
                            f"{_size(bound)} (CAMPO_HISTORY_SPOOL_MAX_BYTES): the oldest "
                            "samples would be dropped")
        if free is not None and est.bytes > free:
            warnings.append(f"site {est.site}: {est.offline_days:g} day(s) offline need about "
                            f"{_size(est.bytes)} of spool, but the disk has {_size(free)} free")
    else:
        line += "; no offline_days declared (history: {offline_days: N} in the site file)"
    return line, warnings


def _size(n: float) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} B"
