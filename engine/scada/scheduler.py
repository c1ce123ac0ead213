"""Per-device work queues, reconnection backoff and poll groups.

Every device has a :class:`DeviceWorker`: one asyncio task that takes jobs from the
device's own priority queue, one at a time, writes ahead of polls. A write therefore never
runs while a poll of the same device is in flight (drivers spread one poll's requests over
their connections themselves), and a slow or dead device only ever delays its own jobs.

A worker that cannot reach its device goes offline: the driver is closed, the device's tags
turn BAD with the reason, and reconnection waits grow exponentially (``reconnect_delay``
doubling up to ``reconnect_delay_max``) with full jitter, so a site's devices do not all
retry at once. Polls that come due while offline answer BAD at once, without I/O. The
worker logs once when its device goes offline and once when it recovers, like Home
Assistant's update coordinator.

Each (device, scan class) pair is a :class:`PollGroup`: a task that starts at a random
offset inside its period, then enqueues one poll per period; a poll still queued or running
when the next one is due is not doubled (the overrun is counted and logged at DEBUG).
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import itertools
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from metamodel.tags import Device

from .pipeline import Pipeline
from .reasons import offline, offline_cause
from .types import DeviceUnavailable, Driver, PointRef, Quality, Reading

log = logging.getLogger(__name__)

#: a driver's read that has not returned after this many device timeouts is abandoned
READ_BUDGET_TIMEOUTS = 10
#: completed scans a poll group keeps the times of (its actual period is their mean)
SCAN_WINDOW = 10


@dataclass
class Backoff:
    """Exponential backoff with full jitter: ``uniform(0.5, 1) * min(max, first * 2**n)``."""

    first: float
    largest: float
    failures: int = 0
    retry_at: float = 0.0
    rng: random.Random = field(default_factory=random.Random)

    def fail(self, now: float) -> float:
        """Record a failure; return the wait before the next attempt."""
        delay = min(self.largest, self.first * 2.0 ** self.failures)
        self.failures += 1
        delay *= self.rng.uniform(0.5, 1.0)
        self.retry_at = now + delay
        return delay

    def reset(self) -> None:
        self.failures = 0
        self.retry_at = 0.0


@dataclass(order=True)
class _Job:
    priority: int
    seq: int
    run: Callable[[], Awaitable[Any]] = field(compare=False)
    future: asyncio.Future[Any] = field(compare=False)


WRITE, POLL = 0, 1


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancel ``task`` and wait for it to end, cancelling again if a cancel was swallowed.

    Python 3.11's ``asyncio.wait_for`` (in libraries we await) can lose a cancellation that
    races with completion; a single ``cancel()`` then ``await task`` would wait forever.
    """
    while task is not None and not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=0.5)
    if task is not None and not task.cancelled() and task.exception() is not None:
        log.debug("task %s ended with %r", task.get_name(), task.exception())


class DeviceWorker:
    """Owns one device's driver and queue; runs its polls and writes one at a time."""

    def __init__(self, device: Device, driver: Driver, pipeline: Pipeline) -> None:
        self.device = device
        self.driver = driver
        self.pipeline = pipeline
        first, largest = device.reconnect_delays
        self.backoff = Backoff(first, largest)
        self.online = False
        #: the reason the device's tags carry while it is offline: the cause it went offline
        #: with, kept until it recovers (a stable string: :mod:`engine.scada.reasons`)
        self.reason = "not connected yet"
        #: the latest failed attempt's own reason (may differ from ``reason``)
        self.last_error: str | None = None
        #: when the current outage began (wall clock), None while online
        self.offline_since: dt.datetime | None = None
        self._queue: asyncio.PriorityQueue[_Job] = asyncio.PriorityQueue()
        self._seq = itertools.count()
        self._task: asyncio.Task[None] | None = None
        self._warned = False
        self._closing: asyncio.Future[None] | None = None
        self.polls = 0
        self.read_budget = max(5.0, READ_BUDGET_TIMEOUTS * device.timeout)

    @property
    def name(self) -> str:
        return self.device.qualname

    def status(self, now: float | None = None) -> dict[str, Any]:
        """The device's state for ``Runtime.status()``: online, the reason its tags carry,
        the latest attempt's error and when the next attempt is due (seconds from now)."""
        now = time.monotonic() if now is None else now
        retry = None
        if not self.online and self.offline_since is not None:
            retry = round(max(0.0, self.backoff.retry_at - now), 3)
        return {"state": "online" if self.online else (
                    "offline" if self.offline_since is not None else "connecting"),
                "reason": None if self.online else self.reason,
                "last_error": self.last_error,
                "offline_since": None if self.offline_since is None
                else self.offline_since.isoformat(),
                "failed_attempts": self.backoff.failures, "next_attempt_in": retry,
                "queued": self._queue.qsize()}

    def start(self) -> None:
        """Start taking jobs."""
        self._task = asyncio.create_task(self._run(), name=f"scada device {self.name}")

    async def stop(self) -> None:
        """Stop taking jobs, fail what is queued, close the driver."""
        await cancel_and_wait(self._task)
        self._task = None
        while not self._queue.empty():
            job = self._queue.get_nowait()
            if not job.future.done():
                job.future.set_exception(DeviceUnavailable("the SCADA runtime is stopping"))
        try:
            await self.driver.close()
        except Exception:
            log.exception("device %s: closing the driver failed", self.name)

    def submit(self, run: Callable[[], Awaitable[Any]], priority: int) -> asyncio.Future[Any]:
        """Queue ``run`` (writes at priority WRITE go before polls); a future of its result."""
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Job(priority, next(self._seq), run, fut))
        return fut

    async def _run(self) -> None:
        while True:
            job = await self._queue.get()
            if job.future.cancelled():
                continue
            try:
                result = await job.run()
            except asyncio.CancelledError:
                if not job.future.done():
                    job.future.cancel()
                raise
            except Exception as exc:
                if not job.future.done():
                    job.future.set_exception(exc)
            else:
                if not job.future.done():
                    job.future.set_result(result)

    # ------------------------------------------------------------------ connection

    async def ensure_connected(self) -> bool:
        """Connect if offline and the backoff allows; True when the device is usable."""
        if self.online:
            return True
        now = time.monotonic()
        if now < self.backoff.retry_at:
            return False
        limit = max(self.device.timeout * 2, 1.0)
        try:
            async with asyncio.timeout(limit):
                await self.driver.connect()
        except asyncio.CancelledError:
            raise
        except TimeoutError as exc:
            self.went_offline(exc, timeout=limit)
            return False
        except Exception as exc:  # DeviceUnavailable, OSError, a driver's bug
            self.went_offline(exc)
            return False
        if self.backoff.failures:
            log.info("device %s recovered after %d failed attempt(s)", self.name,
                     self.backoff.failures)
        self.backoff.reset()
        self.online = True
        self.offline_since = None
        self._warned = False
        return True

    def went_offline(self, why: str | BaseException, exc: BaseException | None = None,
                     timeout: float | None = None) -> None:
        """Mark the device unreachable: backoff, close the driver (in the background).

        ``why`` is a reason or the exception (made a stable reason by
        :func:`engine.scada.reasons.offline`). The first failure of an outage sets the
        reason the tags carry; later attempts only update ``last_error``, so the tags are
        published once per outage, not once per attempt.
        """
        if exc is None and isinstance(why, BaseException):
            exc = why
        reason = offline(why, timeout=timeout)
        delay = self.backoff.fail(time.monotonic())
        self.last_error = reason
        if self.offline_since is None:
            self.offline_since = dt.datetime.now(dt.UTC)
            self.reason = reason
        if not self._warned:
            unexpected = exc is not None and not isinstance(exc, (DeviceUnavailable, OSError))
            log.warning("device %s offline: %s (retrying with backoff)", self.name,
                        offline_cause(reason), exc_info=exc if unexpected else None)
            self._warned = True
        else:
            log.debug("device %s still offline: %s; next attempt in %.1f s", self.name,
                      offline_cause(reason), delay)
        if self.online:
            self.online = False
            # keep a reference: a bare ensure_future task may be collected before it runs
            self._closing = asyncio.ensure_future(self._close_quietly())

    async def _close_quietly(self) -> None:
        try:
            await self.driver.close()
        except Exception:
            log.debug("device %s: close after failure raised", self.name, exc_info=True)

    # ------------------------------------------------------------------ polls

    async def poll(self, group: PollGroup) -> int:
        """Read one poll group into the pipeline; returns the number of changed tags."""
        self.polls += 1
        now = dt.datetime.now(dt.UTC)
        if not await self.ensure_connected():
            return len(self.pipeline.fail(group.paths, self.reason, now))
        try:
            async with asyncio.timeout(self.read_budget):
                readings = await self.driver.read(group.points)
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            self.went_offline(f"a scan took longer than {self.read_budget:g} s")
            return len(self.pipeline.fail(group.paths, self.reason, now))
        except Exception as exc:
            self.went_offline(exc)
            return len(self.pipeline.fail(group.paths, self.reason, now))
        group.note(readings)
        return len(self.pipeline.process(readings, dt.datetime.now(dt.UTC)))

    async def read_now(self, points: Sequence[PointRef]) -> dict[str, Reading]:
        """Read ``points`` at once (used for write read-back); raises when offline."""
        if not await self.ensure_connected():
            raise DeviceUnavailable(self.reason)
        try:
            async with asyncio.timeout(self.read_budget):
                return dict(await self.driver.read(points))
        except DeviceUnavailable as exc:
            self.went_offline(exc)
            raise DeviceUnavailable(self.reason) from None


class PollGroup:
    """The tags of one device and scan class, read once per period."""

    def __init__(self, worker: DeviceWorker, scan_class: str, period: float,
                 points: Sequence[PointRef], rng: random.Random | None = None) -> None:
        self.worker = worker
        self.scan_class = scan_class
        self.period = period
        self.points = tuple(points)
        self.paths = tuple(p.tag for p in points)
        self.rng = rng or random.Random()
        self.failing = False
        #: skipping ticks (logged when it starts and when it ends)
        self.late = False
        #: ticks skipped because the previous scan was still queued or running
        self.overruns = 0
        #: scans that read the device (``note``), and scans completed in any way
        self.scans = 0
        self.completed = 0
        #: (start, end) monotonic times of the latest completed scans
        self._recent: collections.deque[tuple[float, float]] = collections.deque(
            maxlen=SCAN_WINDOW)
        self.max_duration = 0.0
        self._busy: asyncio.Future[Any] | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return f"{self.worker.name}/{self.scan_class}"

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"scada poll {self.name}")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def scan(self) -> int:
        """One scan of the group on its worker (timed for :meth:`status`)."""
        start = time.monotonic()
        try:
            return await self.worker.poll(self)
        finally:
            end = time.monotonic()
            self.completed += 1
            self._recent.append((start, end))
            self.max_duration = max(self.max_duration, end - start)

    def status(self, now: float | None = None) -> dict[str, Any]:
        """How this group keeps up: durations, the actual period and the data's age.

        ``actual_period`` is the mean time between the starts of the latest scans (up to
        :data:`SCAN_WINDOW`); ``age`` the time since the latest scan ended; ``behind`` says
        the group does not hold its period (an actual period over 1.5 periods, or no scan
        ended for 2 periods). ``scans`` counts completed scans, those answered BAD at once
        while the device is offline included.
        """
        now = time.monotonic() if now is None else now
        recent = list(self._recent)
        last = recent[-1] if recent else None
        actual = ((recent[-1][0] - recent[0][0]) / (len(recent) - 1)
                  if len(recent) > 1 else None)
        age = None if last is None else now - last[1]
        behind = bool((actual is not None and actual > 1.5 * self.period)
                      or (age is not None and age > 2 * self.period))
        return {"scan_class": self.scan_class, "period": self.period, "tags": len(self.paths),
                "scans": self.completed, "overruns": self.overruns,
                "last_duration": None if last is None else round(last[1] - last[0], 4),
                "max_duration": round(self.max_duration, 4),
                "actual_period": None if actual is None else round(actual, 4),
                "age": None if age is None else round(age, 4), "behind": behind}

    def note(self, readings: Any) -> None:
        """Log once when every tag of the group turns BAD, and once when one recovers."""
        self.scans += 1
        good = any(r.quality is not Quality.BAD for r in readings.values())
        if not good and readings and not self.failing:
            reason = next(iter(readings.values())).reason
            log.warning("poll group %s failing: %s", self.name, reason)
            self.failing = True
        elif good and self.failing:
            log.info("poll group %s recovered", self.name)
            self.failing = False

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        # a random start inside the period (at most 1 s) so groups do not poll in step
        await asyncio.sleep(self.rng.uniform(0, min(self.period, 1.0)))
        due = loop.time()
        while True:
            if self._busy is not None and not self._busy.done():
                self.overruns += 1
                if not self.late:  # a state change: logged once, recovery once
                    self.late = True
                    log.warning("poll group %s cannot keep its %g s period: the previous "
                                "scan is still queued or running (overruns are counted in "
                                "the runtime's status)", self.name, self.period)
                else:
                    log.debug("poll group %s: previous scan still running, skipped one",
                              self.name)
            else:
                if self.late and self._recent and (
                        self._recent[-1][1] - self._recent[-1][0]) < self.period:
                    self.late = False
                    log.info("poll group %s keeps its %g s period again", self.name,
                             self.period)
                self._busy = self.worker.submit(self.scan, POLL)
                self._busy.add_done_callback(self._done)
            due += self.period
            now = loop.time()
            if due < now:  # we fell behind: skip the missed slots, keep the phase
                missed = int((now - due) // self.period) + 1
                due += missed * self.period
            await asyncio.sleep(due - now)

    def _done(self, fut: asyncio.Future[Any]) -> None:
        if not fut.cancelled() and fut.exception() is not None:
            log.error("poll group %s: scan failed", self.name, exc_info=fut.exception())
