"""What the live-tag views do, independent of Flask: filter, describe, check and write."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

from engine.bus import Bus, LiveValue, WriteOutcome
from engine.bus.policy import Caller, WriteCaller, check_tag_write
from metamodel.tags import Tag, TagModel, TagPattern

from .access import SiteViewer, parse_patterns, tag_visible

log = logging.getLogger(__name__)


@dataclass
class LiveTags:
    """The tag catalogue (from YAML) joined with the bus's live values."""

    tags: TagModel | None
    bus: Bus
    engine: Engine | None = None
    write_timeout: float = 5.0

    def select(self, viewer: SiteViewer, *, site: str | None = None, asset: str | None = None,
               template: str | None = None, pattern: str | TagPattern | None = None
               ) -> list[Tag]:
        """Tags ``viewer`` may see matching every given filter (asset: instance path or bound
        record key); a bad pattern raises :class:`~engine.live.access.PatternRefused`."""
        if self.tags is None:
            return []
        if isinstance(pattern, str):
            pattern = parse_patterns(pattern, field="pattern", limit=1)[0] if pattern else None
        match = pattern.match if pattern is not None else None
        out = []
        for t in self.tags.tags.values():
            if not viewer.may_see_site(t.site):
                continue
            if site and t.site != site:
                continue
            if template and t.template != template:
                continue
            if asset and not (t.instance == asset or (t.binding and t.binding.value == asset)
                              or (t.instance or "").endswith("." + asset)):
                continue
            if match is not None and not match(t.path):
                continue
            out.append(t)
        return out

    def get(self, path: str, viewer: SiteViewer | None = None) -> Tag | None:
        """The tag at ``path``; None when unknown or (given ``viewer``) not visible to them."""
        tag = None if self.tags is None else self.tags.tags.get(path)
        if viewer is not None and not tag_visible(viewer, tag):
            return None
        return tag

    def visible_values(self, viewer: SiteViewer, values: Iterable[LiveValue]
                       ) -> list[LiveValue]:
        """The values of tags ``viewer`` may see (unknown tags are not shown)."""
        known = self.tags.tags if self.tags is not None else {}
        return [v for v in values if tag_visible(viewer, known.get(v.tag))]

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

    @staticmethod
    def check_write(tag: Tag | None, path: str, value: Any, caller: WriteCaller) -> Any:
        """The tag-write policy (:func:`engine.bus.policy.check_tag_write`): the value to
        send, or :class:`WriteRefused` with 404, 403 or 422."""
        return check_tag_write(tag, path, value, caller)

    def write(self, tag: Tag, value: Any, caller: Caller) -> WriteOutcome:
        """Ask the runtime to write and read back (blocking, bounded by ``write_timeout``)."""
        log.info("tag write %s = %r by %s", tag.path, value, caller.user)
        return self.bus.request_write(tag.path, value, caller.to_meta(),
                                      timeout=self.write_timeout)
