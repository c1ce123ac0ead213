"""Sinks: where the runtime's tag changes go (bus, upstream MQTT, Sparkplug, historian, alarms).

A :class:`Sink` is started and stopped with the runtime and gets every batch of changed
:class:`~engine.scada.types.TagValue` objects, starting with the whole live table when it
starts (so it never misses the state from before it joined). The runtime never calls a
sink on the scan path: each sink sits behind a :class:`QueuedSink`, whose ``offer`` only
appends the batch to a queue; the sink's own worker — a thread (for sinks that block: a
database, a socket) or an asyncio task on the runtime's loop (for sinks that must publish
from that loop and return at once, such as the Sparkplug edge node) — hands the queued
batches over. A slow or failing sink therefore never delays a scan; its ``backlog`` (values
waiting) shows how far behind it is, and when the backlog passes ``max_backlog`` the oldest
batches are dropped and counted.

Example::

    class PrintSink:
        name = "print"
        async def start(self) -> None: ...
        def publish(self, batch: Sequence[TagValue]) -> None:
            print(len(batch), "changes")
        async def stop(self) -> None: ...

    runtime.add_sink(PrintSink())            # before start, or thread.add_sink() after
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from .types import TagValue

log = logging.getLogger(__name__)

#: values a sink may have waiting before the oldest batches are dropped
MAX_BACKLOG = 200_000
#: values handed to a sink in one call when it is catching up
MAX_BATCH = 5_000


@runtime_checkable
class Sink(Protocol):
    """A consumer of the runtime's tag changes."""

    #: a short name for logs and status (``bus``, ``upstream``, ``sparkplug``, ``historian``)
    name: str

    async def start(self) -> None:
        """Connect or open what the sink needs (on the runtime's loop, before values)."""

    def publish(self, batch: Sequence[TagValue]) -> None:
        """Take one batch of changes (on the sink's worker: its thread or task)."""

    async def stop(self) -> None:
        """Flush and close (on the runtime's loop, after the last batch)."""


@dataclass(frozen=True, slots=True)
class SinkStats:
    """How a sink is doing: the figures ``/api/tags/status`` reports."""

    name: str
    mode: str
    #: values queued, not yet handed to the sink
    backlog: int
    #: values handed to the sink so far, and dropped because the backlog was full
    published: int
    dropped: int
    #: calls that raised, and the last error
    failures: int
    last_error: str | None
    #: seconds the oldest queued batch has waited (0 when none)
    lag_seconds: float

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "mode": self.mode, "backlog": self.backlog,
                "published": self.published, "dropped": self.dropped,
                "failures": self.failures, "last_error": self.last_error,
                "lag_seconds": round(self.lag_seconds, 3)}


class QueuedSink:
    """A sink behind its own queue and worker (``thread=True``: a thread; else a task)."""

    def __init__(self, sink: Sink, *, thread: bool = True, max_backlog: int = MAX_BACKLOG,
                 max_batch: int = MAX_BATCH) -> None:
        self.sink = sink
        self.name = sink.name
        self.threaded = thread
        self.max_backlog = max_backlog
        self.max_batch = max_batch
        self._queue: collections.deque[tuple[float, Sequence[TagValue]]] = collections.deque()
        self._lock = threading.Condition()
        self._backlog = 0
        self.published = 0
        self.dropped = 0
        self.failures = 0
        self.last_error: str | None = None
        self._failing = False
        self._closing = False
        self._thread: threading.Thread | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._running = False

    @property
    def backlog(self) -> int:
        """Values waiting to be handed to the sink."""
        return self._backlog

    def stats(self) -> SinkStats:
        """Backlog, counters and lag now."""
        with self._lock:
            lag = time.monotonic() - self._queue[0][0] if self._queue else 0.0
            return SinkStats(self.name, "thread" if self.threaded else "task", self._backlog,
                             self.published, self.dropped, self.failures, self.last_error,
                             lag)

    # ------------------------------------------------------------------ life cycle

    async def start(self) -> None:
        """Start the wrapped sink, then the worker (on the runtime's loop)."""
        self._loop = asyncio.get_running_loop()
        try:
            await self.sink.start()
        except Exception as exc:  # a sink that cannot start yet must not stop the runtime
            self._failed("start", exc)
        self._closing = False
        self._running = True
        if self.threaded:
            self._thread = threading.Thread(target=self._thread_main, daemon=True,
                                            name=f"campo-sink-{self.name}")
            self._thread.start()
        else:
            self._wake = asyncio.Event()
            self._task = asyncio.create_task(self._task_main(), name=f"sink {self.name}")

    async def stop(self, flush: float = 5.0) -> None:
        """Hand over what is queued (waiting at most ``flush`` s), then stop the sink."""
        with self._lock:
            self._closing = True
            self._lock.notify_all()
        if self._wake is not None:
            self._wake.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, flush)
            if self._thread.is_alive():  # give up on the rest; the thread ends after its call
                with self._lock:
                    self.dropped += self._backlog
                    self._queue.clear()
                    self._backlog = 0
            self._thread = None
        if self._task is not None:
            done, _ = await asyncio.wait({self._task}, timeout=flush)
            if not done:
                self._task.cancel()
                await asyncio.wait({self._task}, timeout=1.0)
            self._task = None
        self._running = False
        if self._backlog:
            log.warning("sink %s: stopping with %d value(s) not handed over", self.name,
                        self._backlog)
        try:
            await self.sink.stop()
        except Exception as exc:
            self._failed("stop", exc)

    # ------------------------------------------------------------------ the scan side

    def offer(self, batch: Sequence[TagValue]) -> None:
        """Queue a batch (any thread; O(1) unless old batches must be dropped)."""
        if not batch:
            return
        with self._lock:
            self._queue.append((time.monotonic(), batch))
            self._backlog += len(batch)
            while self._backlog > self.max_backlog and len(self._queue) > 1:
                _, old = self._queue.popleft()
                self._backlog -= len(old)
                self.dropped += len(old)
            if self.threaded:
                self._lock.notify()
        if not self.threaded and self._wake is not None and self._loop is not None:
            if _on_loop(self._loop):
                self._wake.set()
            else:
                self._loop.call_soon_threadsafe(self._wake.set)

    # ------------------------------------------------------------------ the sink side

    def _take(self) -> list[TagValue]:
        """Queued batches joined into one call's worth (caller holds the lock)."""
        out: list[TagValue] = []
        while self._queue and (not out or len(out) + len(self._queue[0][1]) <= self.max_batch):
            _, batch = self._queue.popleft()
            out.extend(batch)
        self._backlog -= len(out)
        return out

    def _hand_over(self, batch: list[TagValue]) -> None:
        try:
            self.sink.publish(batch)
        except Exception as exc:  # the sink's problem; the next batch is tried again
            self._failed("publish", exc)
            return
        self.published += len(batch)
        if self._failing:
            log.info("sink %s: publishing again", self.name)
            self._failing = False

    def _thread_main(self) -> None:
        while True:
            with self._lock:
                while not self._queue and not self._closing:
                    self._lock.wait()
                if not self._queue:
                    return
                batch = self._take()
            self._hand_over(batch)

    async def _task_main(self) -> None:
        assert self._wake is not None
        while True:
            with self._lock:
                batch = self._take() if self._queue else []
                closing = self._closing
            if batch:
                self._hand_over(batch)
                await asyncio.sleep(0)  # let the scans run between batches
                continue
            if closing:
                return
            self._wake.clear()
            await self._wake.wait()

    def _failed(self, what: str, exc: BaseException) -> None:
        self.failures += 1
        self.last_error = f"{what}: {exc}" if str(exc) else f"{what}: {type(exc).__name__}"
        if not self._failing:
            log.error("sink %s: %s failed", self.name, what, exc_info=exc)
            self._failing = True


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


class SinkSet:
    """The runtime's sinks: one pipeline subscriber that offers each batch to every sink."""

    def __init__(self) -> None:
        self.sinks: list[QueuedSink] = []

    def add(self, sink: Sink | QueuedSink, *, thread: bool = True) -> QueuedSink:
        """Register ``sink`` (wrapped in a :class:`QueuedSink` unless it is one)."""
        queued = sink if isinstance(sink, QueuedSink) else QueuedSink(sink, thread=thread)
        if any(s.name == queued.name for s in self.sinks):
            raise ValueError(f"a sink named {queued.name!r} is already registered")
        self.sinks = [*self.sinks, queued]
        return queued

    def remove(self, queued: QueuedSink) -> None:
        self.sinks = [s for s in self.sinks if s is not queued]

    def offer(self, batch: Sequence[TagValue]) -> None:
        """The pipeline subscriber: queue ``batch`` for every sink."""
        for s in self.sinks:
            s.offer(batch)

    def stats(self) -> list[SinkStats]:
        return [s.stats() for s in self.sinks]


__all__ = ["MAX_BACKLOG", "QueuedSink", "Sink", "SinkSet", "SinkStats"]
