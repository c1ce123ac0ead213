"""Bus messages and the interface both implementations follow."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from metamodel.tags import PatternSet

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


#: statuses a failed write may carry (others arrive as 502)
WRITE_STATUSES = frozenset({400, 403, 404, 409, 422, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class WriteOutcome:
    """Result of a write request: ``ok`` with the value read back, or an error and status.

    ``status`` is the HTTP status an API answers for a failure: 404/403/422 from the
    write policy, 502 refused or read back different, 503 device offline or disabled (or no
    runtime), 504 not confirmed in time. ``rounded`` says the value read back differs from
    the one asked for by less than the tag's resolution; ``note`` says it in words.
    """

    ok: bool
    value: Any = None
    error: str | None = None
    status: int | None = None
    rounded: bool = False
    note: str | None = None

    @property
    def http_status(self) -> int:
        """200 when it worked, else the failure's status (502 when none was given)."""
        if self.ok:
            return 200
        return self.status if self.status in WRITE_STATUSES else 502

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "value": self.value, "error": self.error,
                "status": self.status, "rounded": self.rounded, "note": self.note}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> WriteOutcome:
        status = d.get("status")
        return cls(bool(d.get("ok")), d.get("value"), d.get("error"),
                   status if isinstance(status, int) else None, bool(d.get("rounded")),
                   d.get("note"))


WriteHandler = Callable[[str, Any, dict[str, Any]], WriteOutcome]
Callback = Callable[[Sequence[LiveValue]], None]


def compile_patterns(patterns: Iterable[str]) -> PatternSet:
    """Tag patterns with the tag language's rules (``*`` within one dotted segment, ``**``
    whole segments), so REST, WebSocket and bus select the same tags (linear time)."""
    return PatternSet(patterns)


#: tags whose match result a subscription remembers (a site has a bounded set of tags)
MATCH_MEMO = 200_000


@dataclass(eq=False)
class Subscription:
    """A callback for the tags matching some patterns; ``close()`` stops it."""

    patterns: tuple[str, ...]
    callback: Callback
    _matcher: PatternSet = field(init=False)
    _owner: Any = None
    _memo: dict[str, bool] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._matcher = compile_patterns(self.patterns)

    def matches(self, tag: str) -> bool:
        """Whether ``tag`` matches (remembered per tag: publishing costs a dict lookup)."""
        hit = self._memo.get(tag)
        if hit is None:
            hit = self._matcher.match(tag)
            if len(self._memo) < MATCH_MEMO:
                self._memo[tag] = hit
        return hit

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
        match = compile_patterns(patterns).match
        with self._lock:
            values = list(self._values.items())
        return sorted((v for t, v in values if match(t)), key=lambda v: v.tag)

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
