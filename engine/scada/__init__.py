"""SCADA runtime: drivers, scan scheduler, tag pipeline (asyncio, its own process)."""

from __future__ import annotations
