"""The built-in simulated pad: one physics model served over Modbus TCP and OPC-UA.

``campo serve`` starts it (in a thread) so a newcomer sees live tags at once, ``campo
simulate`` runs it in the foreground, and the integration tests use it as the device under
test. The register/node map and the faults are described in ``docs/simulator.md``.

Example::

    sim = Simulator(units=4, tick_s=0.1)
    ports = await sim.start()              # free ports on 127.0.0.1
    sim.inject(2, Fault.TRIP)              # unit 2 trips; Modbus and OPC-UA both show it
    await sim.stop()

    sim.start_in_thread(modbus_port=5020)  # from synchronous code (the web server)
    sim.stop_thread()
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
import time
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import urlsplit

from engine.settings import Settings

from .sim.modbus_face import ModbusFace
from .sim.model import Fault, PadModel, PhysicsConfig, Snapshot, TripCause
from .sim.opcua_face import NAMESPACE_URI, OpcUaFace

__all__ = ["NAMESPACE_URI", "Fault", "PhysicsConfig", "SimPorts", "Simulator", "SimulatorPlugin",
           "Snapshot", "TripCause", "serve_plugin"]

log = logging.getLogger(__name__)
T = TypeVar("T")

#: the ports ``campo simulate`` and ``campo serve`` use, as tags/sites/sim_pad.yaml expects
DEFAULT_MODBUS_PORT = 5020
DEFAULT_OPCUA_PORT = 4840


@dataclass(frozen=True, slots=True)
class SimPorts:
    """The ports the two protocol faces listen on."""

    modbus: int
    opcua: int


class Simulator:
    """A pad of pumped units with a Modbus TCP face and an OPC-UA face in one asyncio loop."""

    def __init__(self, units: int = 4, *, host: str = "127.0.0.1", tick_s: float = 0.5,
                 time_scale: float = 1.0, seed: int = 7, physics: PhysicsConfig | None = None,
                 opcua_users: Mapping[str, str] | None = None) -> None:
        """
        :param units: number of units (Modbus device ids 1..N, OPC-UA objects W1..WN)
        :param tick_s: wall-clock seconds between model steps and OPC-UA publishes
        :param time_scale: simulated seconds per wall-clock second (speeds up the dynamics)
        :param opcua_users: username -> password; when given, anonymous OPC-UA is refused
        """
        if tick_s <= 0:
            raise ValueError(f"tick_s must be positive, got {tick_s}")
        self.model = PadModel(units, seed=seed, physics=physics)
        self.host = host
        self.tick_s = tick_s
        self.time_scale = time_scale
        self.modbus = ModbusFace(self.model, host)
        self.opcua = OpcUaFace(self.model, host, users=opcua_users)
        self._ticker: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop_event: asyncio.Event | None = None

    # -- asyncio API ------------------------------------------------------------------
    async def start(self, modbus_port: int = 0, opcua_port: int = 0) -> SimPorts:
        """Start both servers and the model clock; ``0`` picks free ports."""
        self._loop = asyncio.get_running_loop()
        await self.modbus.start(modbus_port)
        try:
            await self.opcua.start(opcua_port)
        except BaseException:
            await self.modbus.stop()
            raise
        self._ticker = asyncio.create_task(self._tick_forever(), name="campo-simulator-tick")
        return self.ports

    async def stop(self) -> None:
        """Stop the clock and both servers."""
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        await self.opcua.stop()
        await self.modbus.stop()

    async def restart_opcua(self, down_s: float = 0.0) -> None:
        """Stop the OPC-UA server, wait ``down_s``, start it again on the same port."""
        port = self.opcua.port
        await self.opcua.stop()
        await asyncio.sleep(down_s)
        await self.opcua.start(port)

    async def stall_opcua(self) -> int:
        """Hang the OPC-UA server's subscriptions (``OpcUaFace.stall_subscriptions``)."""
        return await self.opcua.stall_subscriptions()

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.stop()

    async def _tick_forever(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(self.tick_s)
            now = time.monotonic()
            self.model.step((now - last) * self.time_scale)
            last = now
            try:
                await self.opcua.publish()
            except Exception:  # a publish hiccup must not stop the clock
                log.exception("simulator: OPC-UA publish failed")

    # -- state ------------------------------------------------------------------------
    @property
    def ports(self) -> SimPorts:
        """The listening ports (valid after :meth:`start`)."""
        return SimPorts(modbus=self.modbus.port, opcua=self.opcua.port)

    @property
    def opcua_url(self) -> str:
        """``opc.tcp://host:port/campo/sim``."""
        return self.opcua.url

    @property
    def units(self) -> list[int]:
        """Unit numbers 1..N (Modbus device ids)."""
        return self.model.unit_ids

    # -- thread-safe controls (any thread) ---------------------------------------------
    def inject(self, unit: int, fault: Fault | int,
               cause: TripCause = TripCause.OVERLOAD) -> None:
        """Make a fault active on a unit; ``Fault.NONE`` clears it."""
        self.model.inject(unit, fault, cause)
        log.info("simulator unit %s: fault %s", unit, Fault(fault).name.lower())

    def clear(self, unit: int) -> None:
        """Clear the unit's fault (a tripped unit stays stopped until a run command)."""
        self.inject(unit, Fault.NONE)

    def set_setpoint(self, unit: int, hz: float) -> None:
        """Frequency setpoint in Hz (40-60)."""
        self.model.set_setpoint(unit, hz)

    def command_run(self, unit: int, run: bool) -> None:
        """Start or stop a unit."""
        self.model.command_run(unit, run)

    def snapshot(self, unit: int) -> Snapshot:
        """A unit's current readings."""
        return self.model.snapshot(unit)

    def pause(self) -> None:
        """Freeze the model (the servers keep answering with the frozen values)."""
        self.model.paused = True

    def resume(self) -> None:
        """Let the model run again."""
        self.model.paused = False

    # -- thread-hosted variant -----------------------------------------------------------
    def start_in_thread(self, modbus_port: int = 0, opcua_port: int = 0,
                        timeout: float = 30.0) -> SimPorts:
        """Run the simulator in its own thread and event loop (for synchronous callers)."""
        if self._thread is not None:
            raise RuntimeError("the simulator thread is already running")
        started: concurrent.futures.Future[SimPorts] = concurrent.futures.Future()

        async def main() -> None:
            self._stop_event = asyncio.Event()
            try:
                ports = await self.start(modbus_port, opcua_port)
            except BaseException as exc:
                started.set_exception(exc)
                return
            started.set_result(ports)
            try:
                await self._stop_event.wait()
            finally:
                await self.stop()

        self._thread = threading.Thread(target=asyncio.run, args=(main(),),
                                        name="campo-simulator", daemon=True)
        self._thread.start()
        try:
            return started.result(timeout)
        except BaseException:
            self._thread = None
            raise

    def stop_thread(self, timeout: float = 10.0) -> None:
        """Stop a simulator started with :meth:`start_in_thread` and join its thread."""
        thread, loop, event = self._thread, self._loop, self._stop_event
        if thread is None or loop is None or event is None:
            return
        with contextlib.suppress(RuntimeError):  # loop already closed
            loop.call_soon_threadsafe(event.set)
        thread.join(timeout)
        self._thread = None

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Run a coroutine (e.g. :meth:`restart_opcua`) in the simulator's loop."""
        if self._loop is None:
            raise RuntimeError("the simulator is not running")
        return asyncio.run_coroutine_threadsafe(coro, self._loop)


#: how long ``campo serve`` waits for the simulated pad before starting the runtime
STARTUP_WAIT_S = 10.0


class SimulatorPlugin:
    """The simulated pad beside ``campo serve`` (listed in ``engine.wiring.plugins``).

    ``start()`` waits at most :data:`STARTUP_WAIT_S` for the servers, which come up in
    their own thread; a port already in use is logged, never fatal to the web server.
    """

    def __init__(self, units: int = 4, modbus_port: int = DEFAULT_MODBUS_PORT,
                 opcua_port: int = DEFAULT_OPCUA_PORT, host: str = "127.0.0.1") -> None:
        self.simulator = Simulator(units, host=host)
        self.ports = (modbus_port, opcua_port)
        self._starter: threading.Thread | None = None

    def start(self) -> None:
        """Start the simulator thread in the background."""
        def run() -> None:
            try:
                ports = self.simulator.start_in_thread(*self.ports)
            except Exception as exc:  # e.g. a port in use: the web server keeps serving
                log.error("simulator: not started: %s", exc)
                return
            log.info("simulator: Modbus TCP on port %s, OPC-UA at %s", ports.modbus,
                     self.simulator.opcua_url)

        self._starter = threading.Thread(target=run, name="campo-simulator-start", daemon=True)
        self._starter.start()
        # give the servers a moment so the runtime (started next) finds them listening;
        # a slow or failed start is logged by run() and never holds the web server
        self._starter.join(STARTUP_WAIT_S)

    def stop(self) -> None:
        """Stop the simulator (waits for a start still in progress)."""
        if self._starter is not None:
            self._starter.join(30)
        self.simulator.stop_thread()


def serve_plugin(_model: Any, _engine: Any, settings: Settings) -> SimulatorPlugin | None:
    """``campo serve`` plugin: the simulated pad where the settings put it (the variables the
    tag map's ``sim_pad`` site reads), unless ``CAMPO_SIMULATE=false``."""
    if not settings.simulate:
        return None
    endpoint = urlsplit(settings.sim_opcua_endpoint)
    if endpoint.hostname not in (None, settings.sim_modbus_host):
        log.warning("simulator: OPC-UA host %s differs from the Modbus host %s; both listen "
                    "on %s", endpoint.hostname, settings.sim_modbus_host,
                    settings.sim_modbus_host)
    return SimulatorPlugin(modbus_port=settings.sim_modbus_port,
                           opcua_port=endpoint.port or DEFAULT_OPCUA_PORT,
                           host=settings.sim_modbus_host)
