"""One pipeline for every driver: raw -> decode -> scale -> quality -> deadband -> subscribers.

A :class:`Pipeline` holds one :class:`CompiledTag` per tag (its decode-and-scale closure,
clamp bounds and deadband, compiled once) and the live table: the last value published for
each tag. :meth:`Pipeline.process` takes a batch of driver readings and returns the
:class:`~engine.scada.types.TagValue` objects that changed, after handing them to every
subscriber whose pattern matches.

Rules: a value is published when its quality or reason changes, or when it moved by at
least the tag's deadband from the last published value (any change when the deadband is
0). A BAD reading keeps the last value and publishes the bad quality with its reason. A
clamped value is UNCERTAIN. Timestamps are the source's when the driver gives one, else
the scan's.

Subscribers run on the thread that calls :meth:`process` (the runtime's event loop) and get
a list per batch; they must be quick. The runtime's outputs (bus, upstream, historian) are
not subscribers but sinks (:mod:`engine.scada.sinks`): one subscriber queues each batch for
them, and each sink takes it from its own worker.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from metamodel.tags import Tag, compile_pattern

from .codec import FLOAT_TYPES, compile_decoder
from .types import Quality, Reading, TagValue, Value

log = logging.getLogger(__name__)

GOOD, UNCERTAIN, BAD = Quality.GOOD, Quality.UNCERTAIN, Quality.BAD
Callback = Callable[[Sequence[TagValue]], None]


@dataclass(slots=True, eq=False)
class CompiledTag:
    """A tag ready for the hot path, plus its last published state."""

    path: str
    decode: Callable[[Any], Value]
    deadband: float
    lo: float | None
    hi: float | None
    #: numeric values compare with the deadband; others by equality
    numeric: bool
    #: floats are checked for NaN and infinities
    check_finite: bool
    value: Value = None
    quality: Quality = BAD
    reason: str | None = "not read yet"
    ts: dt.datetime | None = None

    @classmethod
    def of(cls, tag: Tag) -> CompiledTag:
        """Compile ``tag``."""
        lo = hi = None
        if tag.scaling is not None and tag.scaling.clamp and tag.scaling.eng_range:
            lo, hi = tag.scaling.eng_range
        numeric = tag.data_type not in ("bool", "string")
        floats = tag.data_type in FLOAT_TYPES or tag.scaling is not None or tag.data_type is None
        return cls(tag.path, compile_decoder(tag), tag.deadband, lo, hi, numeric, floats)


@dataclass(eq=False)
class Subscription:
    """A callback for the tags matching ``pattern``; :meth:`cancel` stops it."""

    pattern: str
    callback: Callback
    #: the tags delivered; None: every tag
    tags: frozenset[str] | None
    _owner: Pipeline | None = field(default=None, repr=False)

    def cancel(self) -> None:
        """Stop delivering to this subscription."""
        if self._owner is not None:
            self._owner.unsubscribe(self)
            self._owner = None


class Pipeline:
    """Compiled tags, the live table and subscriptions."""

    def __init__(self, tags: Iterable[Tag], now: dt.datetime | None = None) -> None:
        start = now or dt.datetime.now(dt.UTC)
        self.compiled: dict[str, CompiledTag] = {}
        #: the live table; written only by :meth:`process`, one key at a time, so a
        #: ``dict(pipeline.values)`` copy from another thread is consistent per tag
        self.values: dict[str, TagValue] = {}
        for tag in tags:
            c = CompiledTag.of(tag)
            c.ts = start
            self.compiled[tag.path] = c
            self.values[tag.path] = TagValue(tag.path, None, BAD, start, "not read yet")
        self._subs: list[Subscription] = []

    # ------------------------------------------------------------------ subscriptions

    def subscribe(self, pattern: str | Iterable[str], callback: Callback) -> Subscription:
        """Call ``callback(values)`` with each batch of changed values matching ``pattern``.

        ``pattern`` is a tag path pattern (``pad7.*.pip``, ``pad7.**``) or a list of paths.
        """
        tags: frozenset[str] | None
        if pattern == "**":
            tags, name = None, pattern
        elif isinstance(pattern, str):
            match = compile_pattern(pattern).match
            tags = frozenset(p for p in self.compiled if match(p))
            name = pattern
        else:
            tags = frozenset(p for p in pattern if p in self.compiled)
            name = ",".join(sorted(tags))
        sub = Subscription(name, callback, tags, self)
        self._subs = [*self._subs, sub]  # copy-on-write: process() iterates a snapshot
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Remove ``sub`` (no error when already removed)."""
        self._subs = [s for s in self._subs if s is not sub]

    def _dispatch(self, changed: list[TagValue]) -> None:
        for sub in self._subs:
            tags = sub.tags
            hits = changed if tags is None else [v for v in changed if v.tag in tags]
            if not hits:
                continue
            try:
                sub.callback(hits)
            except Exception:  # a subscriber's bug must not stop the scan
                log.exception("subscriber %s failed on %d value(s)", sub.pattern, len(hits))

    # ------------------------------------------------------------------ hot path

    def process(self, readings: Mapping[str, Reading], ts: dt.datetime | None = None
                ) -> list[TagValue]:
        """Run readings through the pipeline; publish and return what changed."""
        now = ts or dt.datetime.now(dt.UTC)
        compiled = self.compiled
        values = self.values
        changed: list[TagValue] = []
        for path, r in readings.items():
            c = compiled.get(path)
            if c is None:
                continue
            reason: str | None = None
            if r.quality is GOOD:
                try:
                    v = c.decode(r.value)
                except Exception as exc:  # a device sent what the tag cannot hold
                    v, q, reason = c.value, BAD, f"cannot decode {r.value!r}: {exc}"
                else:
                    q = GOOD
                    if c.check_finite and type(v) is float and not math.isfinite(v):
                        v, q, reason = c.value, BAD, f"not a finite number ({v})"
                    elif c.lo is not None:
                        if v < c.lo:  # type: ignore[operator]
                            v, q, reason = c.lo, UNCERTAIN, "below the engineering range"
                        elif v > c.hi:  # type: ignore[operator]
                            v, q, reason = c.hi, UNCERTAIN, "above the engineering range"
            else:
                v, q, reason = c.value, r.quality, r.reason
                if r.quality is UNCERTAIN and r.value is not None:
                    try:
                        v = c.decode(r.value)
                    except Exception:
                        v = c.value
            if q is c.quality and reason == c.reason:
                old = c.value
                if v == old:
                    continue
                if c.deadband and c.numeric and old is not None and v is not None:
                    try:
                        if abs(v - old) < c.deadband:  # type: ignore[operator]
                            continue
                    except TypeError:  # an untyped source changed the value's type
                        pass
            c.value, c.quality, c.reason = v, q, reason
            c.ts = stamp = r.source_ts or now
            tv = TagValue(path, v, q, stamp, reason)
            values[path] = tv
            changed.append(tv)
        if changed and self._subs:
            self._dispatch(changed)
        return changed

    def fail(self, paths: Iterable[str], reason: str, ts: dt.datetime | None = None
             ) -> list[TagValue]:
        """Mark ``paths`` BAD with ``reason`` (device offline, no driver, disabled)."""
        bad = Reading(None, BAD, None, reason)
        return self.process({p: bad for p in paths}, ts)

    def snapshot(self, pattern: str | None = None) -> dict[str, TagValue]:
        """A copy of the live table (all tags, or those matching ``pattern``)."""
        values = dict(self.values)
        if pattern is None:
            return values
        match = compile_pattern(pattern).match
        return {k: v for k, v in values.items() if match(k)}
