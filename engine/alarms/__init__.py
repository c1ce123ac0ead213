"""Alarms after ISA-18.2 / IEC 62682: rules compiled from the tag language, the state
machine, its persistent store and journal, the engine that evaluates rules on every tag
change, and (in :mod:`engine.alarms.web`) the API operators act through.

The engine runs where the SCADA runtime runs (it is one of the runtime's sinks, joined by
:mod:`engine.wiring`); nothing here imports :mod:`engine.scada` or :mod:`engine.live`.
See ``docs/alarms.md``.
"""

from __future__ import annotations
