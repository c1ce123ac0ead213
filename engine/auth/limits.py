"""Rate-limit counters of the gateway: see :mod:`engine.counters` (a leaf module, so the
lean gunicorn master can make the shared table before forking without importing Flask)."""

from __future__ import annotations

from engine.counters import Rate, SharedCounters, Verdict

__all__ = ["Rate", "SharedCounters", "Verdict"]
