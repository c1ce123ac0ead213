"""The in-process bus: SCADA runtime and web server share one process."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from .base import Callback, LiveTable, LiveValue, Subscription, WriteHandler, WriteOutcome

log = logging.getLogger(__name__)


class InProcessBus:
    """Direct calls; subscriber callbacks run on the publishing thread (keep them short)."""

    def __init__(self) -> None:
        self._table = LiveTable()
        self._writer: WriteHandler | None = None

    def publish(self, values: Sequence[LiveValue]) -> None:
        self._table.update(values)

    def snapshot(self, patterns: Sequence[str] = ("**",)) -> list[LiveValue]:
        return self._table.snapshot(patterns)

    def latest(self, tags: Iterable[str]) -> dict[str, LiveValue]:
        return self._table.latest(tags)

    def subscribe(self, patterns: Sequence[str], callback: Callback) -> Subscription:
        return self._table.subscribe(patterns, callback)

    def serve_writes(self, handler: WriteHandler) -> None:
        self._writer = handler

    def request_write(self, tag: str, value: Any, meta: dict[str, Any],
                      timeout: float = 5.0) -> WriteOutcome:
        if self._writer is None:
            return WriteOutcome(False, error="the SCADA runtime is not running", status=503)
        try:
            return self._writer(tag, value, {**meta, "timeout": timeout})
        except Exception as exc:  # a failing write must answer, not crash the web request
            log.exception("write to %s failed", tag)
            return WriteOutcome(False, error=f"write failed: {exc}", status=502)

    def close(self) -> None:
        self._writer = None
