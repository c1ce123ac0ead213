"""Live tag access for the web process: REST (``/api/tags``) and WebSocket (``/api/ws``).

The web side never talks to devices: it reads the latest values from the bus
(:mod:`engine.bus`), checks the tag-write policy (:mod:`engine.bus.policy`) and the caller's
sites (:mod:`engine.live.access`), records the write in the audit log and asks the SCADA
runtime (through the bus) to write and read back.

Wiring (done by ``campo serve``)::

    live = LiveTags(tag_model, bus, engine)
    init_live(app, api, live)
"""

from __future__ import annotations

from engine.bus.policy import WriteRefused

from .access import MAX_PATTERNS, PatternRefused, parse_patterns, tag_visible, visible
from .service import LiveTags
from .views import init_live

__all__ = ["MAX_PATTERNS", "LiveTags", "PatternRefused", "WriteRefused", "init_live",
           "parse_patterns", "tag_visible", "visible"]
