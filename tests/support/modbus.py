"""Helpers for the Modbus integration tests: a real pymodbus server in the test's loop.

Registers are filled with ``convert_to_registers`` (pymodbus' own encoding) so the tests
check our decoding against the library, not against itself. pymodbus writes big-endian
bytes only; the little-byte orders (BADC, DCBA) are its registers with the two bytes of each
register swapped, which is what such a device puts on the wire.
"""

from __future__ import annotations

import asyncio
import os
import socket
import tty
from dataclasses import dataclass, field
from typing import Any

from pymodbus.client import ModbusTcpClient
from pymodbus.exceptions import NoSuchIdException
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

DT = ModbusTcpClient.DATATYPE


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def encode(value: Any, dtype: str, byte_order: str = "big", word_order: str = "big",
           length: int | None = None) -> list[int]:
    """Registers of ``value`` as a device with these orders sends them (via pymodbus)."""
    if dtype == "string":
        regs = ModbusTcpClient.convert_to_registers(value, DT.STRING)
        regs += [0] * (((length or 0) + 1) // 2 - len(regs))
    else:
        regs = ModbusTcpClient.convert_to_registers(value, getattr(DT, dtype.upper()),
                                                    word_order=word_order)  # type: ignore[arg-type]
    if byte_order == "little":
        regs = [((r & 0xFF) << 8) | (r >> 8) for r in regs]
    return regs


@dataclass
class Tables:
    """Initial contents of one unit: registers and bits from offset 0."""

    hr: list[int] = field(default_factory=lambda: [0] * 100)
    ir: list[int] = field(default_factory=lambda: [0] * 20)
    co: list[bool] = field(default_factory=lambda: [False] * 16)
    di: list[bool] = field(default_factory=lambda: [False] * 16)
    #: a unit that never answers (pymodbus answers unknown ids with exception 4, so a dead
    #: unit is a known one whose hook raises NoSuchIdException: the server stays silent)
    dead: bool = False
    #: seconds the unit takes to answer each request (a slow device)
    latency: float = 0.0

    def device(self, unit: int) -> SimDevice:
        action = _silent if self.dead else (_slow(self.latency) if self.latency else None)
        return SimDevice(unit, action=action, simdata=(
            [SimData(0, values=list(self.co), datatype=DataType.BITS)],
            [SimData(0, values=list(self.di), datatype=DataType.BITS)],
            [SimData(0, values=list(self.hr), datatype=DataType.REGISTERS)],
            [SimData(0, values=list(self.ir), datatype=DataType.REGISTERS)],
        ))


async def _silent(*_: Any) -> None:
    raise NoSuchIdException("this unit is dead")


def _slow(seconds: float) -> Any:
    async def action(*_: Any) -> None:
        await asyncio.sleep(seconds)
    return action


class TcpServer:
    """A pymodbus TCP server with some units; stop and start it again on the same port."""

    def __init__(self, units: dict[int, Tables], port: int = 0) -> None:
        self.units = units
        self.port = port or free_port()
        self.server: ModbusTcpServer | None = None

    async def start(self) -> None:
        self.server = ModbusTcpServer([t.device(u) for u, t in self.units.items()],
                                      address=("127.0.0.1", self.port),
                                      ignore_missing_devices=True)
        await self.server.serve_forever(background=True)

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.shutdown()
            self.server = None
            await asyncio.sleep(0.05)

    async def set_registers(self, unit: int, offset: int, values: list[int]) -> None:
        assert self.server is not None
        await self.server.async_setValues(unit, 3, offset, values)

    async def registers(self, unit: int, offset: int, count: int, fc: int = 3) -> list[Any]:
        assert self.server is not None
        return list(await self.server.async_getValues(unit, fc, offset, count))


class PtyLink:
    """Two pseudo-terminals joined back to back: a null-modem cable inside the process.

    The server opens :attr:`server_path`, the client :attr:`client_path`; bytes written on
    one come out of the other (the masters are copied to each other on the event loop).
    """

    def __init__(self) -> None:
        self._pairs = [os.openpty(), os.openpty()]
        for _, slave in self._pairs:
            tty.setraw(slave)
        self.server_path = os.ttyname(self._pairs[0][1])
        self.client_path = os.ttyname(self._pairs[1][1])
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._loop = loop
        (ma, _), (mb, _) = self._pairs
        loop.add_reader(ma, self._copy, ma, mb)
        loop.add_reader(mb, self._copy, mb, ma)

    @staticmethod
    def _copy(src: int, dst: int) -> None:
        try:
            data = os.read(src, 4096)
        except OSError:
            return
        if data:
            os.write(dst, data)

    def close(self) -> None:
        if self._loop is not None:
            for master, _ in self._pairs:
                self._loop.remove_reader(master)
        for master, slave in self._pairs:
            for fd in (master, slave):
                try:
                    os.close(fd)
                except OSError:
                    pass


async def serial_server(path: str, units: dict[int, Tables]) -> ModbusSerialServer:
    """A pymodbus RTU server on ``path`` serving ``units`` (other unit ids never answer)."""
    server = ModbusSerialServer([t.device(u) for u, t in units.items()], port=path,
                                baudrate=19200, ignore_missing_devices=True)
    await server.serve_forever(background=True)
    return server
