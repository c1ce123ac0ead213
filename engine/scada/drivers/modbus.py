"""Modbus TCP and RTU driver over pymodbus 3.16's async clients.

Reads follow a plan from :mod:`engine.scada.planner` (the fewest requests within the
protocol limits and the device's ``max_gap``), computed once per point list. Each tag's
:class:`~engine.scada.types.Reading` carries its registers as ``bytes`` in wire order (or a
``bool`` for a coil or discrete input); the pipeline decodes them.

Failures never escape as pymodbus exceptions: an exception response makes the request's
tags BAD with the code and its meaning; a timeout makes them BAD and skips the unit's other
requests for the rest of the scan, so a dead unit on a shared RTU line costs at most one
timeout per scan; a lost connection raises :class:`~engine.scada.types.DeviceUnavailable`
and the runtime reconnects with backoff. pymodbus' own retries and reconnects are off: the
runtime owns both.

TCP opens ``concurrency`` connections (one pymodbus connection serialises its requests) and
spreads a scan's requests over them; RTU has one line and one request at a time.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Mapping, Sequence
from typing import Any

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusIOException

from metamodel.tags import Device, ModbusAddress, Tag
from metamodel.tags.spec import ModbusRtuSpec, ModbusTcpSpec

from ..planner import Limits, Request, plan_requests
from ..reasons import offline
from ..types import DeviceUnavailable, PointRef, Quality, Reading, WriteFailed

log = logging.getLogger(__name__)

GOOD, BAD = Quality.GOOD, Quality.BAD

#: Modbus exception codes and what they mean
EXCEPTION_CODES: dict[int, str] = {
    1: "illegal function", 2: "illegal data address", 3: "illegal data value",
    4: "server device failure", 5: "acknowledge", 6: "server device busy",
    8: "memory parity error", 10: "gateway path unavailable",
    11: "gateway target device failed to respond",
}

class _DemoteTimeouts(logging.Filter):
    """pymodbus logs every unanswered request at ERROR; this driver reports a silent unit
    itself (BAD quality with the reason, one log line per state change in the runtime), so
    those lines are demoted to DEBUG instead of repeating every scan."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR and str(record.msg).startswith("No response received"):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


logging.getLogger("pymodbus.logging").addFilter(_DemoteTimeouts())

_READS = {
    "coil": "read_coils", "discrete_input": "read_discrete_inputs",
    "holding_register": "read_holding_registers", "input_register": "read_input_registers",
}


def exception_reason(code: int) -> str:
    """``exception 2 (illegal data address)``."""
    return f"exception {code} ({EXCEPTION_CODES.get(code, 'unknown code')})"


class ModbusDriver:
    """One Modbus TCP device or RTU line; implements the :class:`~engine.scada.types.Driver`."""

    def __init__(self, device: Device) -> None:
        spec = device.spec
        if not isinstance(spec, (ModbusTcpSpec, ModbusRtuSpec)):
            raise TypeError(f"device '{device.qualname}' is {device.type}, not Modbus")
        self.device = device
        self.spec = spec
        self.limits = Limits.of(device)
        self.timeout = device.timeout
        self._clients: list[Any] = []
        self._plans: dict[int, tuple[Sequence[PointRef], list[Request]]] = {}
        self.requests_sent = 0
        self._silent: set[int] = set()

    # ------------------------------------------------------------------ connection

    def _make_client(self) -> Any:
        spec = self.spec
        if isinstance(spec, ModbusTcpSpec):
            return AsyncModbusTcpClient(spec.host, port=spec.port, timeout=self.timeout,
                                        retries=0, reconnect_delay=0, reconnect_delay_max=0,
                                        name=self.device.qualname)
        return AsyncModbusSerialClient(spec.port, baudrate=spec.baudrate,
                                       bytesize=spec.bytesize, parity=spec.parity,
                                       stopbits=spec.stopbits, timeout=self.timeout,
                                       retries=0, reconnect_delay=0, reconnect_delay_max=0,
                                       name=self.device.qualname)

    @property
    def where(self) -> str:
        spec = self.spec
        return f"{spec.host}:{spec.port}" if isinstance(spec, ModbusTcpSpec) else spec.port

    async def connect(self) -> None:
        """Open the connection(s); raise DeviceUnavailable when none opens."""
        await self.close()
        n = self.spec.concurrency if isinstance(self.spec, ModbusTcpSpec) else 1
        clients = [self._make_client() for _ in range(n)]
        try:
            results = await asyncio.gather(*(c.connect() for c in clients),
                                           return_exceptions=True)
        except asyncio.CancelledError:
            for c in clients:
                c.close()
            raise
        self._clients = [c for c, ok in zip(clients, results, strict=True) if ok is True]
        for c in self._clients:
            # a silent unit behind a gateway must not close the connection of the others:
            # the runtime decides when the device as a whole is gone (see read())
            c.set_max_no_responses(1 << 30)
        for c, ok in zip(clients, results, strict=True):
            if ok is not True:
                c.close()
        if not self._clients:
            raise DeviceUnavailable(offline(f"cannot connect to {self.where}"))

    async def close(self) -> None:
        """Close every connection."""
        for c in self._clients:
            c.close()
        self._clients = []

    def _connected(self) -> list[Any]:
        return [c for c in self._clients if c.connected]

    # ------------------------------------------------------------------ reads

    def plan(self, points: Sequence[PointRef]) -> list[Request]:
        """The requests that read ``points`` (cached per point list)."""
        cached = self._plans.get(id(points))
        if cached is not None and cached[0] is points:
            return cached[1]
        reqs = plan_requests(((p.tag, p.address) for p in points), self.limits)
        self._plans[id(points)] = (points, reqs)
        return reqs

    async def read(self, points: Sequence[PointRef]) -> Mapping[str, Reading]:
        """Read ``points``; per-request failures become BAD readings."""
        requests = self.plan(points)
        clients = self._connected()
        if not clients:
            raise DeviceUnavailable(offline(f"connection to {self.where} lost"))
        if len(clients) < len(self._clients):  # the device is up: reopen what dropped
            for c in self._clients:
                if not c.connected:
                    try:
                        async with asyncio.timeout(self.timeout):
                            await c.connect()
                    except (TimeoutError, OSError):
                        pass
            clients = self._connected()
        out: dict[str, Reading] = {}
        dead: dict[int, str] = {}
        lost: list[str] = []
        pending = list(reversed(requests))
        if len(clients) == 1 or len(requests) == 1:
            await self._worker(clients[0], pending, out, dead, lost)
        else:
            await asyncio.gather(*(self._worker(c, pending, out, dead, lost) for c in clients))
        for req in pending:  # put back by a connection that dropped after the others finished
            self._fail(req, lost[0] if lost else "not read", out)
        if lost and not self._connected():
            raise DeviceUnavailable(offline(lost[0]))
        units = {r.unit_id for r in requests}
        if dead and len(dead) == len(units) and all(r.quality is BAD for r in out.values()):
            # not one unit answered: the link (or the gateway) is gone, not a unit
            raise DeviceUnavailable(offline(f"no unit answered within {self.timeout:g} s"))
        self._note_units(units, dead)
        return out

    def _note_units(self, units: set[int], dead: dict[int, str]) -> None:
        """Log once when a unit stops answering and once when it answers again."""
        for unit, reason in dead.items():
            if unit not in self._silent:
                self._silent.add(unit)
                log.warning("device %s: unit %d not answering: %s", self.device.qualname,
                            unit, reason)
        for unit in units - dead.keys():
            if unit in self._silent:
                self._silent.discard(unit)
                log.info("device %s: unit %d answering again", self.device.qualname, unit)

    async def _worker(self, client: Any, pending: list[Request], out: dict[str, Reading],
                      dead: dict[int, str], lost: list[str]) -> None:
        while pending:
            req = pending.pop()
            if req.unit_id in dead:
                self._fail(req, dead[req.unit_id], out)
                continue
            try:
                rr = await getattr(client, _READS[req.function])(
                    req.start, count=req.count, device_id=req.unit_id)
            except ModbusIOException:
                reason = f"unit {req.unit_id} did not answer within {self.timeout:g} s"
                dead[req.unit_id] = reason
                self._fail(req, reason, out)
                continue
            except (ConnectionException, OSError) as exc:
                reason = f"connection to {self.where} lost"
                log.debug("device %s: %s: %s", self.device.qualname, reason, exc)
                lost.append(reason)
                if client.connected or not self._connected():
                    # the device is offline only when no connection is left
                    self._fail(req, reason if self._connected() else offline(reason), out)
                else:
                    pending.append(req)  # another connection will read it
                return
            finally:
                self.requests_sent += 1
            if rr.isError():
                code = getattr(rr, "exception_code", 0)
                self._fail(req, f"{req.describe()}: {exception_reason(code)}", out)
                continue
            if req.is_bits:
                bits = rr.bits
                for s in req.slots:
                    out[s.tag] = Reading(bits[s.at], GOOD)
            else:
                regs = rr.registers
                if len(regs) < req.count:
                    self._fail(req, f"{req.describe()}: short answer ({len(regs)} registers)",
                               out)
                    continue
                buf = struct.pack(f">{req.count}H", *regs[:req.count])
                for s in req.slots:
                    out[s.tag] = Reading(buf[2 * s.at:2 * (s.at + s.count)], GOOD)

    @staticmethod
    def _fail(req: Request, reason: str, out: dict[str, Reading]) -> None:
        bad = Reading(None, BAD, None, reason)
        for s in req.slots:
            out[s.tag] = bad

    # ------------------------------------------------------------------ writes

    async def write(self, point: PointRef, value: Any) -> None:
        """Write registers (a tuple of ints) or a coil (a bool); raise WriteFailed on refusal."""
        a: ModbusAddress = point.address
        clients = self._connected()
        if not clients:
            raise DeviceUnavailable(offline(f"connection to {self.where} lost"))
        client = clients[0]
        try:
            if a.function == "coil":
                rr = await client.write_coil(a.offset, bool(value), device_id=a.unit_id)
            elif a.function == "holding_register":
                regs = [int(r) for r in value]
                if len(regs) == 1:
                    rr = await client.write_register(a.offset, regs[0], device_id=a.unit_id)
                else:
                    rr = await client.write_registers(a.offset, regs, device_id=a.unit_id)
            else:
                raise WriteFailed(f"{a} is read-only")
        except ModbusIOException:
            raise WriteFailed(f"unit {a.unit_id} did not answer within {self.timeout:g} s"
                              ) from None
        except (ConnectionException, OSError) as exc:
            log.debug("device %s: write failed: %s", self.device.qualname, exc)
            raise DeviceUnavailable(offline(f"connection to {self.where} lost")) from None
        if rr.isError():
            raise WriteFailed(f"{a.modicon()} unit {a.unit_id}: "
                              f"{exception_reason(getattr(rr, 'exception_code', 0))}")


def point(tag: Tag) -> PointRef:
    """The point a Modbus tag is read and written through."""
    return PointRef(tag.path, tag.modbus)


def create(device: Device) -> ModbusDriver:
    """A driver for a ``modbus_tcp`` or ``modbus_rtu`` device."""
    return ModbusDriver(device)
