"""Bus messages and the interface both implementations follow."""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from metamodel.tags import compile_pattern

QUALITIES = ("bad", "uncertain", "good")


@dataclass(frozen=True, slots=True)
class LiveValue:
    """A tag's current engineering value as the web side sees it."""

    tag: str
    value: Any
    quality: str  # one of QUALITIES
    ts: dt.datetime
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"tag": self.tag, "value": self.value, "quality": self.quality,
                "ts": self.ts.isoformat(), "reason": self.reason}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> LiveValue:
        return cls(d["tag"], d.get("value"), d.get("quality", "bad"),
                   dt.datetime.fromisoformat(d["ts"]), d.get("reason"))


@dataclass(frozen=True, slots=True)
class WriteOutcome:
    """Result of a write request: ``ok`` with the value read back, or an error."""

    ok: bool
    value: Any = None
    error: str | None = None


WriteHandler = Callable[[str, Any, dict[str, Any]], WriteOutcome]
Callback = Callable[[Sequence[LiveValue]], None]


def compile_patterns(patterns: Iterable[str]) -> re.Pattern[str]:
    """One regex for tag patterns, with the tag language's rules (``*`` within one dotted
    segment, ``**`` across segments), so REST, WebSocket and bus select the same tags."""
    parts = [compile_pattern(p).pattern for p in patterns] or ["(?!)"]
    return re.compile("|".join(f"(?:{p})" for p in parts))


@dataclass
class Subscription:
    """A callback for the tags matching some patterns; ``close()`` stops it."""

    patterns: tuple[str, ...]
    callback: Callback
    _matcher: re.Pattern[str] = field(init=False)
    _owner: Any = None

    def __post_init__(self) -> None:
        self._matcher = compile_patterns(self.patterns)

    def matches(self, tag: str) -> bool:
        return self._matcher.match(tag) is not None

    def close(self) -> None:
        if self._owner is not None:
            self._owner._unsubscribe(self)
            self._owner = None


class Bus(Protocol):
    """What the web side and the SCADA side may call."""

    def publish(self, values: Sequence[LiveValue]) -> None: ...

    def snapshot(self, patterns: Sequence[str] = ("**",)) -> list[LiveValue]: ...

    def latest(self, tags: Iterable[str]) -> dict[str, LiveValue]: ...

    def subscribe(self, patterns: Sequence[str], callback: Callback) -> Subscription: ...

    def serve_writes(self, handler: WriteHandler) -> None: ...

    def request_write(self, tag: str, value: Any, meta: dict[str, Any],
                      timeout: float = 5.0) -> WriteOutcome: ...

    def close(self) -> None: ...


class LiveTable:
    """Thread-safe latest-value table with pattern subscriptions (shared by both buses)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, LiveValue] = {}
        self._subs: list[Subscription] = []

    def update(self, values: Sequence[LiveValue]) -> None:
        with self._lock:
            for v in values:
                self._values[v.tag] = v
            subs = list(self._subs)
        for sub in subs:
            hits = [v for v in values if sub.matches(v.tag)]
            if hits:
                sub.callback(hits)

    def snapshot(self, patterns: Sequence[str]) -> list[LiveValue]:
        matcher = compile_patterns(patterns)
        with self._lock:
            return sorted((v for t, v in self._values.items() if matcher.match(t)),
                          key=lambda v: v.tag)

    def latest(self, tags: Iterable[str]) -> dict[str, LiveValue]:
        """The current values of ``tags`` (those that have one), by tag."""
        with self._lock:
            return {t: v for t in tags if (v := self._values.get(t)) is not None}

    def subscribe(self, patterns: Sequence[str], callback: Callback) -> Subscription:
        sub = Subscription(tuple(patterns), callback)
        sub._owner = self
        with self._lock:
            self._subs.append(sub)
        return sub

    def _unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)
