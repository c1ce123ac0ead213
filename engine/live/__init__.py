"""Live tag access for the web process: REST (``/api/tags``) and WebSocket (``/api/ws``).

The web side never talks to devices: it reads the latest values from the bus
(:mod:`engine.bus`), checks the tag's YAML write rules and the caller's roles, records the
write in the audit log and asks the SCADA runtime (through the bus) to write and read back.

Wiring (done by ``campo serve``)::

    live = LiveTags(tag_model, bus, engine)
    init_live(app, api, live)
"""

from __future__ import annotations

from .service import LiveTags, WriteRefused
from .views import init_live

__all__ = ["LiveTags", "WriteRefused", "init_live"]
