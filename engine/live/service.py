"""What the live-tag views do, independent of Flask: filter, describe, check and write."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

from engine.bus import Bus, LiveValue, WriteOutcome
from metamodel.tags import Tag, TagModel, compile_pattern

log = logging.getLogger(__name__)


class WriteRefused(Exception):
    """A write the caller may not make or whose value is invalid: ``status`` is 4xx."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


@dataclass
class LiveTags:
    """The tag catalogue (from YAML) joined with the bus's live values."""

    tags: TagModel | None
    bus: Bus
    engine: Engine | None = None
    write_timeout: float = 5.0

    def select(self, *, site: str | None = None, asset: str | None = None,
               template: str | None = None, pattern: str | None = None) -> list[Tag]:
        """Tags matching every given filter (asset: instance path or bound record key)."""
        if self.tags is None:
            return []
        rx = compile_pattern(pattern) if pattern else None
        out = []
        for t in self.tags.tags.values():
            if site and t.site != site:
                continue
            if template and t.template != template:
                continue
            if asset and not (t.instance == asset or (t.binding and t.binding.value == asset)
                              or (t.instance or "").endswith("." + asset)):
                continue
            if rx and not rx.match(t.path):
                continue
            out.append(t)
        return out

    def get(self, path: str) -> Tag | None:
        return None if self.tags is None else self.tags.tags.get(path)

    def values(self, tags: Iterable[Tag]) -> dict[str, LiveValue]:
        """Latest values of ``tags`` from the bus, by path."""
        return self.bus.latest(t.path for t in tags)

    @staticmethod
    def describe(tag: Tag, value: LiveValue | None) -> dict[str, Any]:
        """JSON for one tag: definition plus current value, quality and timestamp."""
        return {
            "path": tag.path, "site": tag.site, "device": tag.device,
            "instance": tag.instance, "template": tag.template,
            "asset": None if tag.binding is None else {
                "entity": tag.binding.entity, "key": tag.binding.key,
                "value": tag.binding.value},
            "type": tag.data_type, "unit": tag.unit, "description": tag.description,
            "label": None if tag.label is None else {"es": tag.label.get("es"),
                                                     "en": tag.label.get("en")},
            "writable": tag.writable,
            "write_limits": [tag.write_min, tag.write_max] if tag.writable else None,
            "scan_class": tag.scan_class,
            "value": None if value is None else value.value,
            "quality": "bad" if value is None else value.quality,
            "ts": None if value is None else value.ts.isoformat(),
            "reason": "no value received yet" if value is None else value.reason,
        }

    def check_write(self, tag: Tag, value: Any, roles: frozenset[str]) -> Any:
        """Validate a write against the tag's YAML rules; return the value to send."""
        if not tag.writable:
            raise WriteRefused(403, f"tag '{tag.path}' is not writable")
        if not (roles & tag.write_roles):
            need = ", ".join(sorted(tag.write_roles)) or "(none)"
            raise WriteRefused(403, f"writing '{tag.path}' needs one of the roles: {need}")
        kind = tag.data_type
        if kind == "bool" or (kind is None and isinstance(value, bool)):
            if not isinstance(value, bool):
                raise WriteRefused(422, "expected true or false", "value")
            return value
        if kind == "string":
            if not isinstance(value, str):
                raise WriteRefused(422, "expected a string", "value")
            if tag.length and len(value) > tag.length:
                raise WriteRefused(422, f"longer than {tag.length} characters", "value")
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise WriteRefused(422, "expected a number", "value")
        if isinstance(value, float) and not math.isfinite(value):
            raise WriteRefused(422, "expected a finite number", "value")
        if tag.write_min is not None and value < tag.write_min:
            raise WriteRefused(422, f"{value} is below the write limit {tag.write_min}", "value")
        if tag.write_max is not None and value > tag.write_max:
            raise WriteRefused(422, f"{value} is above the write limit {tag.write_max}", "value")
        return value

    def write(self, tag: Tag, value: Any, who: dict[str, Any]) -> WriteOutcome:
        """Ask the runtime to write and read back (blocking, bounded by ``write_timeout``)."""
        log.info("tag write %s = %r by %s", tag.path, value, who.get("user"))
        return self.bus.request_write(tag.path, value, who, timeout=self.write_timeout)
