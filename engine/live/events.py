"""Alarm events on ``/api/ws``: ``{"type": "subscribe_alarms"}`` (optionally ``"sites"``).

The server answers ``{"type": "subscribed_alarms"}`` and then pushes
``{"type": "alarms", "events": [...]}`` for every batch of alarm transitions of the sites
the caller may see, as the runtime publishes them on the bus's ``alarms`` event channel
(:mod:`engine.bus.events`, found in ``app.extensions["campo_events"]``). A new
``subscribe_alarms`` replaces the previous one.
"""

from __future__ import annotations

import json
import queue
from typing import Any

from engine.bus.events import EventHub

ALARMS = "alarms"


def subscribe_alarms(app: Any, ws: Any, msg: dict[str, Any], viewer: list[Any],
                     outbox: queue.Queue[Any], subs: list[Any]) -> None:
    """Subscribe the socket to alarm events (see the module docstring)."""
    hub: EventHub | None = app.extensions.get("campo_events")
    for s in subs:
        s.close()
    subs.clear()
    if hub is None:
        ws.send(json.dumps({"type": "error", "code": 503,
                            "message": "no alarm events in this process"}))
        return
    only = msg.get("sites")
    wanted = set(only) if isinstance(only, list) else None

    def push(events: Any) -> None:
        shown = [e for e in events if viewer[0].may_see_site(e.get("site"))
                 and (wanted is None or e.get("site") in wanted)]
        if not shown:
            return
        try:
            outbox.put_nowait({"type": "alarms", "events": shown})
        except queue.Full:  # a slow client loses old batches, never the server's memory
            pass

    subs.append(hub.subscribe(ALARMS, push))
    ws.send(json.dumps({"type": "subscribed_alarms"}))
