"""The pad as a Modbus TCP server: one device id per unit, registers computed on each request.

pymodbus 3.16 serves :class:`~pymodbus.simulator.SimDevice` objects; each device's ``action``
hook runs on every access, so registers are filled from the model at request time and writes
are applied to the model (an out-of-range setpoint is answered with ILLEGAL_VALUE). A unit
with the comms-loss fault raises ``NoSuchIdException`` from its hook and the server, built with
``ignore_missing_devices=True``, sends nothing: the client times out, as with a dead RTU.
"""

from __future__ import annotations

import logging
import struct

from pymodbus.constants import ExcCodes
from pymodbus.exceptions import NoSuchIdException
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from .model import Fault, PadModel, Snapshot
from .ports import ensure_free

log = logging.getLogger(__name__)

#: holding-register offsets (see docs/simulator.md)
REG_PIP, REG_THP, REG_CHP = 0, 2, 4
REG_CURRENT, REG_FREQUENCY, REG_RATE = 6, 7, 8
REG_MOTOR_TEMP, REG_RUN_HOURS, REG_TRIP_CAUSE = 10, 11, 13
REG_SETPOINT, REG_FAULT = 20, 30
REGISTER_COUNT = 31
#: coil offsets
COIL_RUNNING, COIL_RUN_COMMAND = 0, 1

_COIL_FCS = {1, 5, 15}
_DISCRETE_FCS = {2}


def _f32(value: float) -> list[int]:
    hi, lo = struct.unpack(">HH", struct.pack(">f", value))
    return [hi, lo]


def _u16(value: float) -> int:
    return max(0, min(0xFFFF, round(value)))


def encode_registers(s: Snapshot) -> list[int]:
    """The 31 holding registers of one unit (float32 ABCD, scaled integers)."""
    regs = [0] * REGISTER_COUNT
    regs[REG_PIP:REG_PIP + 2] = _f32(s.intake_pressure)
    regs[REG_THP:REG_THP + 2] = _f32(s.tubing_pressure)
    regs[REG_CHP:REG_CHP + 2] = _f32(s.casing_pressure)
    regs[REG_CURRENT] = _u16(s.motor_current * 10)
    regs[REG_FREQUENCY] = _u16(s.frequency * 100)
    regs[REG_RATE:REG_RATE + 2] = _f32(s.liquid_rate)
    regs[REG_MOTOR_TEMP] = round(s.motor_temperature * 10) & 0xFFFF
    hours = max(0, min(0xFFFFFFFF, int(s.run_hours)))
    regs[REG_RUN_HOURS:REG_RUN_HOURS + 2] = [hours >> 16, hours & 0xFFFF]
    regs[REG_TRIP_CAUSE] = int(s.trip_cause)
    regs[REG_SETPOINT] = _u16(s.frequency_setpoint * 100)
    regs[REG_FAULT] = int(s.fault)
    return regs


def encode_coils(s: Snapshot) -> int:
    """Coils 0 (running) and 1 (run command) packed into one register, bit 0 first."""
    return int(s.running) | (int(s.run_command) << 1)


def _device(model: PadModel, unit: int) -> SimDevice:
    holding = [
        SimData(REG_PIP, count=3, values=0.0, datatype=DataType.FLOAT32, readonly=True),
        SimData(REG_CURRENT, count=2, values=0, datatype=DataType.UINT16, readonly=True),
        SimData(REG_RATE, values=0.0, datatype=DataType.FLOAT32, readonly=True),
        SimData(REG_MOTOR_TEMP, values=0, datatype=DataType.INT16, readonly=True),
        SimData(REG_RUN_HOURS, values=0, datatype=DataType.UINT32, readonly=True),
        SimData(REG_TRIP_CAUSE, values=0, datatype=DataType.UINT16, readonly=True),
        SimData(14, count=REG_SETPOINT - 14, values=0, datatype=DataType.REGISTERS, readonly=True),
        SimData(REG_SETPOINT, values=0, datatype=DataType.UINT16),
        SimData(21, count=REG_FAULT - 21, values=0, datatype=DataType.REGISTERS, readonly=True),
        SimData(REG_FAULT, values=0, datatype=DataType.UINT16),
    ]
    inputs = [SimData(0, count=REGISTER_COUNT, values=0, datatype=DataType.REGISTERS,
                      readonly=True)]
    coils = [SimData(0, count=16, values=False, datatype=DataType.BITS)]
    discrete = [SimData(0, count=16, values=False, datatype=DataType.BITS)]
    return SimDevice(id=unit, simdata=(coils, discrete, holding, inputs),
                     action=_UnitHook(model, unit).access)


class _UnitHook:
    """The ``action`` of one unit's SimDevice: every request on the unit passes here."""

    def __init__(self, model: PadModel, unit: int) -> None:
        self.model = model
        self.unit = unit
        #: the write that injected comms loss is still answered (its read-back follows)
        self._answer_once = False

    async def access(self, function_code: int, _start: int, address: int, count: int,
                     registers: list[int],
                     set_values: list[int] | list[bool] | None) -> ExcCodes | None:
        """Apply a write, then refresh the block the request reads from the model."""
        if self.model.fault(self.unit) is Fault.COMMS_LOSS and not self._answer_once:
            raise NoSuchIdException(f"unit {self.unit} has lost communications (simulated)")
        self._answer_once = False
        if set_values is not None:
            error = self._write(function_code, address, list(set_values))
            if error is not None:
                return error
            self._answer_once = self.model.fault(self.unit) is Fault.COMMS_LOSS
        snap = self.model.snapshot(self.unit)
        if function_code in _COIL_FCS or function_code in _DISCRETE_FCS:
            registers[0] = encode_coils(snap)
        else:
            registers[:REGISTER_COUNT] = encode_registers(snap)
        return None

    def _write(self, function_code: int, address: int,
               values: list[int] | list[bool]) -> ExcCodes | None:
        try:
            if function_code in _COIL_FCS:
                for offset, bit in enumerate(values, start=address):
                    if offset != COIL_RUN_COMMAND:
                        return ExcCodes.ILLEGAL_ADDRESS  # coil 0 is a status
                    self.model.command_run(self.unit, bool(bit))
                return None
            for offset, raw in enumerate(values, start=address):
                if offset == REG_SETPOINT:
                    self.model.set_setpoint(self.unit, int(raw) / 100.0)
                elif offset == REG_FAULT:
                    self.model.inject(self.unit, int(raw))
        except ValueError as exc:
            log.info("simulator unit %s: refused a Modbus write at %s: %s", self.unit, address,
                     exc)
            return ExcCodes.ILLEGAL_VALUE
        return None


class ModbusFace:
    """A pymodbus TCP server over a :class:`PadModel`."""

    def __init__(self, model: PadModel, host: str = "127.0.0.1") -> None:
        self.model = model
        self.host = host
        self._server: ModbusTcpServer | None = None
        self.port = 0

    async def start(self, port: int = 0) -> None:
        """Listen (``port=0`` picks a free port, readable as :attr:`port` afterwards);
        :class:`~engine.scada.sim.ports.PortInUse` when the port is taken."""
        ensure_free("Modbus TCP", self.host, port)
        devices = [_device(self.model, u) for u in self.model.unit_ids]
        self._server = ModbusTcpServer(devices, address=(self.host, port),
                                       ignore_missing_devices=True)
        await self._server.serve_forever(background=True)
        listener = self._server.transport
        sock = listener.sockets[0] if listener is not None else None  # type: ignore[attr-defined]
        self.port = sock.getsockname()[1] if sock is not None else port
        log.info("simulator: Modbus TCP on %s:%s, device ids %s", self.host, self.port,
                 self.model.unit_ids)

    async def stop(self) -> None:
        """Close the listener and every client connection."""
        if self._server is not None:
            await self._server.shutdown()  # type: ignore[no-untyped-call]
            self._server = None
