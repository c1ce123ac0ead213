"""Record events for live lists and forms (filled in by the live-update step)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .plugin import DeskPlugin


def start_events(plugin: DeskPlugin) -> Any:
    """Start delivering record events; returns a stop function or None."""
    return None
