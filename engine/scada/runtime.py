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
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from metamodel.tags import Tag, TagModel

from .codec import CodecError, compile_encoder, resolution
from .pipeline import Callback, Pipeline, Subscription
from .registry import DriverRegistry, NoDriver, default_registry
from .scheduler import WRITE, DeviceWorker, PollGroup
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

    # ------------------------------------------------------------------ life cycle

    async def start(self) -> None:
        """Create drivers and poll groups and start polling (in the running loop)."""
        if self._started:
            return
        self._loop = asyncio.get_running_loop()
        for name, device in self.model.devices.items():
            tags = self.model.tags_of(name)
            if not tags:
                continue
            paths = [t.path for t in tags]
            if not device.enabled:
                self.unavailable[name] = "device disabled"
                self.pipeline.fail(paths, "device disabled")
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

    async def stop(self) -> None:
        """Stop polling and close every driver."""
        for g in self.groups:
            await g.stop()
        for w in self.workers.values():
            await w.stop()
        self.groups.clear()
        self.workers.clear()
        self._started = False

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

    def _check(self, path: str, value: Any, roles: Iterable[str]) -> tuple[Tag, Any]:
        tag = self.model.tags.get(path)
        if tag is None:
            raise WriteError(path, "unknown tag", 404)
        if not tag.writable:
            raise WriteError(path, "the tag is not writable", 409)
        granted = set(roles) & tag.write_roles
        if not granted:
            raise WriteError(path, f"none of the roles {sorted(set(roles))} may write it "
                             f"(allowed: {', '.join(sorted(tag.write_roles))})", 403)
        dtype = tag.data_type
        if dtype == "bool":
            if not isinstance(value, bool):
                raise WriteError(path, f"expected true or false, got {value!r}", 400)
        elif dtype == "string":
            if not isinstance(value, str):
                raise WriteError(path, f"expected a string, got {value!r}", 400)
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or (
                isinstance(value, float) and not math.isfinite(value)):
            raise WriteError(path, f"expected a number, got {value!r}", 400)
        if tag.write_min is not None and value < tag.write_min:
            raise WriteError(path, f"{value} is below the minimum {tag.write_min:g}", 400)
        if tag.write_max is not None and value > tag.write_max:
            raise WriteError(path, f"{value} is above the maximum {tag.write_max:g}", 400)
        encode = self._encoders.get(path)
        if encode is None:
            encode = self._encoders[path] = compile_encoder(tag)
        try:
            return tag, encode(value)
        except (CodecError, ValueError, OverflowError) as exc:
            raise WriteError(path, f"{value!r} cannot be written: {exc}", 400) from None

    async def write(self, path: str, value: Any, roles: Iterable[str]) -> WriteResult:
        """Check permission and range, write ahead of polls, confirm by reading back."""
        tag, raw = self._check(path, value, roles)
        worker = self.workers.get(tag.device)
        if worker is None:
            why = self.unavailable.get(tag.device, "the runtime is not running")
            raise WriteError(path, f"device {tag.device} is unavailable: {why}", 503)
        point = self.points[path]

        async def job() -> WriteResult:
            if not await worker.ensure_connected():
                raise WriteError(path, f"device offline: {worker.reason}", 503)
            try:
                await worker.driver.write(point, raw)
                readings = await worker.read_now((point,))
            except DeviceUnavailable as exc:
                worker.went_offline(str(exc), exc)
                raise WriteError(path, f"device offline: {exc}", 503) from None
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
            return WriteResult(path, value, back, reading.quality,
                               reading.source_ts or dt.datetime.now(dt.UTC))

        fut = worker.submit(job, WRITE)
        timeout = self.write_timeout or max(5.0, 4 * worker.device.timeout)
        try:
            async with asyncio.timeout(timeout):
                result: WriteResult = await asyncio.shield(fut)
            return result
        except TimeoutError:
            raise WriteError(path, f"no confirmation within {timeout:g} s", 504) from None

    # ------------------------------------------------------------------ threads

    def start_in_thread(self, timeout: float = 10.0) -> RuntimeThread:
        """Run the runtime on its own event loop in a daemon thread; returns its handle."""
        handle = RuntimeThread(self)
        handle.start(timeout)
        return handle


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

    def write(self, path: str, value: Any, roles: Iterable[str],
              timeout: float = 30.0) -> WriteResult:
        """Blocking :meth:`Runtime.write` from another thread."""
        assert self.loop is not None, "not started"
        fut = asyncio.run_coroutine_threadsafe(self.runtime.write(path, value, list(roles)),
                                               self.loop)
        try:
            return fut.result(timeout)
        except concurrent.futures.TimeoutError:
            fut.cancel()
            raise WriteError(path, f"no confirmation within {timeout:g} s", 504) from None

    def snapshot(self, pattern: str | None = None) -> dict[str, TagValue]:
        """See :meth:`Runtime.snapshot`."""
        return self.runtime.snapshot(pattern)

    def subscribe(self, pattern: str | Iterable[str], callback: Callback) -> Subscription:
        """See :meth:`Runtime.subscribe` (the callback runs on the runtime's thread)."""
        return self.runtime.subscribe(pattern, callback)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop polling, close the drivers and end the thread."""
        if self.loop is not None and self._thread is not None and self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout)
