"""The SCADA runtime: drivers, poll groups, the live tag table and writes, for one tag model.

Build a :class:`Runtime` from a :class:`~metamodel.tags.TagModel`, then either run it in
your own event loop (``await runtime.start()`` ... ``await runtime.stop()``) or in a
background thread (``handle = runtime.start_in_thread()``) from synchronous code such as a
web server. Reading the live table (:meth:`Runtime.snapshot`, :meth:`Runtime.get`) and
subscribing (:meth:`Runtime.subscribe`) are safe from any thread; subscriber callbacks run
on the runtime's thread.

Example::

    from metamodel.tags import load_tags
    from engine.scada.runtime import Runtime

    runtime = Runtime(load_tags("."))
    handle = runtime.start_in_thread()
    runtime.subscribe("sim_pad.*.pip", lambda values: print(values))
    handle.write("sim_pad.w1.frequency_setpoint", 52.5, {"operator"})
    handle.stop()
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import logging
import math
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from engine.bus.policy import ALL_SITES, Caller, WriteCaller, WriteRefused, check_tag_write
from metamodel.tags import Tag, TagModel

from .codec import INTEGER_TYPES, CodecError, compile_encoder, resolution
from .pipeline import Callback, Pipeline, Subscription
from .reasons import DISABLED
from .registry import DriverRegistry, NoDriver, default_registry
from .scheduler import WRITE, DeviceWorker, PollGroup
from .sinks import QueuedSink, Sink, SinkSet, SinkStats
from .types import DeviceUnavailable, PointRef, Quality, TagValue, Value

log = logging.getLogger(__name__)


class WriteError(Exception):
    """A refused or failed write; ``status`` is the HTTP status an API would answer."""

    def __init__(self, tag: str, message: str, status: int) -> None:
        super().__init__(f"{tag}: {message}")
        self.tag = tag
        self.message = message
        self.status = status


@dataclass(frozen=True, slots=True)
class WriteResult:
    """A confirmed write: the value asked for and the value read back."""

    tag: str
    requested: Value
    value: Value
    quality: Quality
    ts: dt.datetime
    #: the device holds a value that differs from the request within the tag's resolution
    rounded: bool = False
    note: str | None = None


class Runtime:
    """Every device of a tag model polled into one pipeline."""

    def __init__(self, model: TagModel, registry: DriverRegistry | None = None,
                 write_timeout: float | None = None) -> None:
        self.model = model
        self.registry = registry or default_registry()
        self.pipeline = Pipeline(model.tags.values())
        self.workers: dict[str, DeviceWorker] = {}
        self.groups: list[PollGroup] = []
        self.points: dict[str, PointRef] = {}
        self.unavailable: dict[str, str] = {}
        self.write_timeout = write_timeout
        self._encoders: dict[str, Any] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = False
        #: where every change goes, each behind its own queue (:mod:`engine.scada.sinks`)
        self.sinks = SinkSet()
        self._sink_sub: Subscription | None = None
        #: what ``campo tags plan`` rejects in this model, by device (set at start)
        self.plan_problems: dict[str, list[str]] = {}

    # ------------------------------------------------------------------ life cycle

    async def start(self) -> None:
        """Create drivers and poll groups and start polling (in the running loop)."""
        if self._started:
            return
        self._loop = asyncio.get_running_loop()
        # together: a sink waiting for its broker or database delays the others only once
        await asyncio.gather(*(sink.start() for sink in self.sinks.sinks))
        self._sink_sub = self.pipeline.subscribe("**", self.sinks.offer)
        for name, device in self.model.devices.items():
            tags = self.model.tags_of(name)
            if not tags:
                continue
            paths = [t.path for t in tags]
            if not device.enabled:
                self.unavailable[name] = DISABLED
                self.pipeline.fail(paths, DISABLED)
                continue
            try:
                factory = self.registry.get(device.type)
                driver = factory.create(device)
                points = [factory.point(t) for t in tags]
            except NoDriver as exc:
                log.warning("device %s: %s; its %d tag(s) stay BAD", name, exc, len(tags))
                self.unavailable[name] = str(exc)
                self.pipeline.fail(paths, str(exc))
                continue
            worker = DeviceWorker(device, driver, self.pipeline)
            self.workers[name] = worker
            listen = getattr(driver, "add_listener", None)
            if callable(listen):
                listen(self._listener())
            by_class: dict[tuple[float, str], list[PointRef]] = {}
            for tag, pt in zip(tags, points, strict=True):
                self.points[tag.path] = pt
                by_class.setdefault((tag.period, tag.scan_class), []).append(pt)
            worker.start()
            for (period, scan_class), pts in sorted(by_class.items()):
                group = PollGroup(worker, scan_class, period, pts)
                self.groups.append(group)
                group.start()
        self._started = True
        log.info("SCADA runtime: %d device(s), %d poll group(s), %d tag(s)",
                 len(self.workers), len(self.groups), len(self.model.tags))
        self.check_plan()

    def check_plan(self) -> list[str]:
        """Log a WARNING with what ``campo tags plan`` rejects (same words); kept for
        :meth:`status`. The runtime still starts: the overruns then show in the status."""
        from .commands import PLAN_HINT, scan_plan_problems

        self.plan_problems = scan_plan_problems(self.model)
        found = [p for ps in self.plan_problems.values() for p in ps]
        if found:
            log.warning("the scan plan does not fit (campo tags plan):\n  %s\n  hint: %s",
                        "\n  ".join(found), PLAN_HINT)
        return found

    def status(self) -> dict[str, Any]:
        """Devices, poll groups and sinks now (any thread; see ``GET /api/scada/status``).

        Per device: its state (online, offline, connecting, disabled, unavailable), the
        reason its tags carry, the latest attempt's error and when the next attempt is due;
        per scan class: scans, overruns, durations, the actual period and the data's age;
        the scan plan's problems; each sink's backlog.
        """
        now = time.monotonic()
        groups: dict[str, list[dict[str, Any]]] = {}
        for g in list(self.groups):
            groups.setdefault(g.worker.name, []).append(g.status(now))
        devices = []
        for name, device in self.model.devices.items():
            n = len(self.model.tags_of(name))
            if not n:
                continue
            entry: dict[str, Any] = {"device": name, "site": device.site,
                                     "type": device.type, "tags": n}
            worker = self.workers.get(name)
            if worker is not None:
                entry.update(worker.status(now))
            else:
                why = self.unavailable.get(name, "the runtime is not running")
                entry.update({"state": "disabled" if why == DISABLED else "unavailable",
                              "reason": why, "last_error": None, "offline_since": None,
                              "failed_attempts": 0, "next_attempt_in": None, "queued": 0})
            entry["plan_problems"] = list(self.plan_problems.get(name, ()))
            entry["scan_classes"] = groups.get(name, [])
            entry["behind"] = any(g["behind"] for g in entry["scan_classes"])
            devices.append(entry)
        problems = [p for d in devices for p in d["plan_problems"]]
        return {"running": self._started,
                "reported_at": dt.datetime.now(dt.UTC).isoformat(),
                "plan": {"ok": not problems, "problems": problems}, "devices": devices,
                "sinks": [st.to_json() for st in self.sink_stats()]}

    async def stop(self) -> None:
        """Stop polling and close every driver."""
        for g in self.groups:
            await g.stop()
        for w in self.workers.values():
            await w.stop()
        self.groups.clear()
        self.workers.clear()
        if self._sink_sub is not None:
            self._sink_sub.cancel()
            self._sink_sub = None
        for sink in self.sinks.sinks:
            await sink.stop()
        self._started = False

    # ------------------------------------------------------------------ sinks

    def add_sink(self, sink: Sink, *, thread: bool = True) -> QueuedSink:
        """Register ``sink`` before :meth:`start` (``thread=False``: its worker is a task on
        the runtime's loop). It gets the live table first, then every change."""
        if self._started:
            raise RuntimeError("the runtime is running: use attach_sink()")
        queued = self.sinks.add(sink, thread=thread)
        queued.offer(list(self.pipeline.values.values()))
        return queued

    async def attach_sink(self, sink: Sink, *, thread: bool = True) -> QueuedSink:
        """Register and start ``sink`` while running (on the runtime's loop)."""
        if not self._started:
            return self.add_sink(sink, thread=thread)
        queued = self.sinks.add(sink, thread=thread)
        queued.offer(list(self.pipeline.values.values()))  # no await since: no gap, no dup
        await queued.start()
        return queued

    def sink_stats(self) -> list[SinkStats]:
        """Backlog and counters of every sink (any thread)."""
        return self.sinks.stats()

    def _listener(self) -> Any:
        """A ``(tag, reading)`` callback for drivers that push changes as they arrive."""
        pending: dict[str, Any] = {}
        loop = asyncio.get_running_loop()

        def flush() -> None:
            batch = dict(pending)
            pending.clear()
            self.pipeline.process(batch)

        def listener(tag: str, reading: Any) -> None:
            if not pending:
                loop.call_soon(flush)
            pending[tag] = reading
        return listener

    # ------------------------------------------------------------------ live table

    def snapshot(self, pattern: str | None = None) -> dict[str, TagValue]:
        """A copy of the live table, all tags or those matching ``pattern`` (any thread)."""
        return self.pipeline.snapshot(pattern)

    def get(self, path: str) -> TagValue | None:
        """The current value of one tag (any thread)."""
        return self.pipeline.values.get(path)

    def subscribe(self, pattern: str | Iterable[str], callback: Callback) -> Subscription:
        """Call ``callback(values)`` on the runtime's thread with each batch of changes."""
        return self.pipeline.subscribe(pattern, callback)

    # ------------------------------------------------------------------ writes

    def _check(self, path: str, value: Any, caller: WriteCaller) -> tuple[Tag, Any]:
        """The tag-write policy (shared with the web side), then the tag's encoder."""
        tag = self.model.tags.get(path)
        try:
            check_tag_write(tag, path, value, caller)
        except WriteRefused as err:
            raise WriteError(path, err.message, err.status) from None
        assert tag is not None  # the policy answered 404 otherwise
        encode = self._encoders.get(path)
        if encode is None:
            encode = self._encoders[path] = compile_encoder(tag)
        try:
            return tag, encode(value)
        except (CodecError, ValueError, OverflowError) as exc:
            raise WriteError(path, f"{value!r} cannot be written: {exc}", 422) from None

    async def write(self, path: str, value: Any, roles: Iterable[str] | WriteCaller,
                    sites: Iterable[str] | None = None) -> WriteResult:
        """Check the write policy, write ahead of polls, confirm by reading back.

        ``roles`` are the caller's roles (or a whole :class:`~engine.bus.policy.Caller`);
        ``sites`` the sites they may write to (None: every site, for trusted callers).
        """
        tag, raw = self._check(path, value, _caller(roles, sites))
        worker = self.workers.get(tag.device)
        if worker is None:
            why = self.unavailable.get(tag.device, "the runtime is not running")
            raise WriteError(path, f"device {tag.device} is unavailable: {why}", 503)
        point = self.points[path]

        async def job() -> WriteResult:
            if not await worker.ensure_connected():
                raise WriteError(path, worker.reason, 503)
            try:
                await worker.driver.write(point, raw)
                readings = await worker.read_now((point,))
            except DeviceUnavailable as exc:
                worker.went_offline(exc)
                raise WriteError(path, worker.reason, 503) from None
            except WriteError:
                raise
            except Exception as exc:  # WriteFailed or a driver's own refusal
                raise WriteError(path, f"the device refused the write: {exc}", 502) from None
            reading = readings.get(path)
            if reading is None or reading.quality is Quality.BAD:
                why = reading.reason if reading is not None else "no value"
                raise WriteError(path, f"written, but the read-back failed: {why}", 504)
            self.pipeline.process({path: reading})
            back = self.pipeline.compiled[path].decode(reading.value)
            if not _same(back, value, resolution(tag)):
                raise WriteError(path, f"wrote {value!r} but read back {back!r}", 502)
            log.info("tag %s written: %r (device %s)", path, value, tag.device)
            rounded = _rounded(tag, back, value)
            note = (f"the device holds {back!r}, not {value!r}: the tag's resolution is "
                    f"{resolution(tag):g}") if rounded else None
            return WriteResult(path, value, back, reading.quality,
                               reading.source_ts or dt.datetime.now(dt.UTC), rounded, note)

        fut = worker.submit(job, WRITE)
        timeout = self.write_timeout or max(5.0, 4 * worker.device.timeout)
        try:
            async with asyncio.timeout(timeout):
                result: WriteResult = await asyncio.shield(fut)
            return result
        except TimeoutError:
            # the job may still end (or fail) after the caller was answered: collect its
            # outcome so asyncio does not log "Future exception was never retrieved"
            fut.add_done_callback(_collect)
            raise WriteError(path, f"no confirmation within {timeout:g} s", 504) from None

    # ------------------------------------------------------------------ threads

    def start_in_thread(self, timeout: float = 10.0) -> RuntimeThread:
        """Run the runtime on its own event loop in a daemon thread; returns its handle."""
        handle = RuntimeThread(self)
        handle.start(timeout)
        return handle


def _caller(roles: Iterable[str] | WriteCaller, sites: Iterable[str] | None) -> WriteCaller:
    if hasattr(roles, "may_see_site"):
        return roles  # type: ignore[return-value]
    return Caller(frozenset(roles),
                  frozenset({ALL_SITES}) if sites is None else frozenset(sites))


def _rounded(tag: Tag, back: Value, wanted: Any) -> bool:
    """Whether a confirmed read-back differs from the request (more than float noise)."""
    if isinstance(wanted, (bool, str)) or isinstance(back, (bool, str)) or back is None:
        return False
    diff = abs(float(back) - float(wanted))
    if tag.data_type in INTEGER_TYPES:
        return diff > resolution(tag) * 1e-6 + 1e-12 * abs(float(wanted))
    if tag.data_type == "float32":
        return not math.isclose(float(back), float(wanted), rel_tol=1e-6, abs_tol=1e-12)
    return not math.isclose(float(back), float(wanted), rel_tol=1e-12, abs_tol=1e-300)


def _same(back: Value, wanted: Any, step: float) -> bool:
    if isinstance(wanted, (bool, str)) or isinstance(back, (bool, str)):
        return bool(back == wanted)
    if back is None:
        return False
    return math.isclose(float(back), float(wanted), rel_tol=1e-6, abs_tol=step / 2 + 1e-9)


class RuntimeThread:
    """A runtime running in a background thread, with blocking, thread-safe calls."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self, timeout: float = 10.0) -> None:
        """Start the thread and wait until the runtime has started."""
        self._thread = threading.Thread(target=self._main, name="campo-scada", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"the SCADA runtime did not start within {timeout:g} s")
        if self._error is not None:
            raise RuntimeError(f"the SCADA runtime failed to start: {self._error}")

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        self.loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self.runtime.start())
        except BaseException as exc:  # reported to start()
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self.runtime.stop())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def write(self, path: str, value: Any, roles: Iterable[str] | WriteCaller,
              timeout: float = 30.0, sites: Iterable[str] | None = None) -> WriteResult:
        """Blocking :meth:`Runtime.write` from another thread."""
        assert self.loop is not None, "not started"
        caller = _caller(roles, sites)
        fut = asyncio.run_coroutine_threadsafe(self.runtime.write(path, value, caller),
                                               self.loop)
        try:
            return fut.result(timeout)
        except concurrent.futures.TimeoutError:
            fut.cancel()
            raise WriteError(path, f"no confirmation within {timeout:g} s", 504) from None

    def snapshot(self, pattern: str | None = None) -> dict[str, TagValue]:
        """See :meth:`Runtime.snapshot`."""
        return self.runtime.snapshot(pattern)

    def add_sink(self, sink: Sink, *, thread: bool = True, timeout: float = 30.0
                 ) -> QueuedSink:
        """See :meth:`Runtime.add_sink` (before start) and :meth:`Runtime.attach_sink`."""
        if self.loop is None or not self.loop.is_running():
            return self.runtime.add_sink(sink, thread=thread)
        fut = asyncio.run_coroutine_threadsafe(self.runtime.attach_sink(sink, thread=thread),
                                               self.loop)
        return fut.result(timeout)

    def status(self) -> dict[str, Any]:
        """See :meth:`Runtime.status`."""
        return self.runtime.status()

    def subscribe(self, pattern: str | Iterable[str], callback: Callback) -> Subscription:
        """See :meth:`Runtime.subscribe` (the callback runs on the runtime's thread)."""
        return self.runtime.subscribe(pattern, callback)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop polling, close the drivers and end the thread."""
        if self.loop is not None and self._thread is not None and self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout)


def _collect(fut: asyncio.Future[Any]) -> None:
    """Retrieve the outcome of a job nobody waits for any more (see :meth:`Runtime.write`)."""
    if not fut.cancelled():
        fut.exception()
