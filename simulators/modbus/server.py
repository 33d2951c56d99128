"""A Modbus TCP converter played by a pymodbus server, with fault injection.

This and `collectors/modbus/transport.py` are the only modules importing pymodbus (3.16.x):
this one for the server side of the simulators only.

Each unit behind the converter holds four tables (coils, discrete inputs, holding and input
registers) of `size` cells, zero unless written. A fault set on a unit changes how it answers:
`silent` (no answer at all), `exception` (a Modbus exception with `code`), `slow` (answers after
`delay_s`), `short` (a well-formed answer with fewer registers than asked), `truncated` (a frame
cut short), `garbled` (bytes that are not Modbus TCP), `wrong_tid` (an answer under another
transaction id), `wrong_unit` (an answer under another unit id). `drop_connections()` closes
every client connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pymodbus.constants import ExcCodes
from pymodbus.datastore import ModbusServerContext
from pymodbus.exceptions import NoSuchIdException
from pymodbus.server import ModbusTcpServer

logging.getLogger("pymodbus").setLevel(logging.CRITICAL)

FaultKind = Literal[
    "silent", "exception", "slow", "short", "truncated", "garbled", "wrong_tid", "wrong_unit"
]
TableName = Literal["coil", "discrete", "holding", "input"]
_FC_TABLE: dict[int, TableName] = {1: "coil", 2: "discrete", 3: "holding", 4: "input"}
FAULT_KINDS: tuple[str, ...] = FaultKind.__args__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Fault:
    kind: FaultKind
    code: int = 4
    """Exception code for `exception` (4: device failure; 2: illegal address; 6: busy …)."""
    delay_s: float = 2.0
    """Answer delay for `slow`."""


@dataclass(slots=True)
class Unit:
    size: int = 0x200
    tables: dict[TableName, list[int]] = field(default_factory=dict)
    fault: Fault | None = None
    requests: int = 0

    def __post_init__(self) -> None:
        for t in ("coil", "discrete", "holding", "input"):
            self.tables.setdefault(t, [0] * self.size)

    def write(self, table: TableName, values: dict[int, int] | dict[int, bool]) -> None:
        cells = self.tables[table]
        for addr, v in values.items():
            cells[addr] = int(v)

    def get(self, table: TableName, address: int, count: int = 1) -> list[int]:
        return self.tables[table][address : address + count]


class _Context(ModbusServerContext):
    """The datastore seen by the pymodbus server: our units, with their faults."""

    def __init__(self, units: dict[int, Unit]) -> None:  # no super(): its datastore is unused
        self.units = units
        self.old_simulator = True
        self.simdevices = []
        self.served = 0

    async def async_getValues(
        self, device_id: int, func_code: int, address: int, count: int = 1
    ) -> list[int] | list[bool] | ExcCodes:
        unit = self.units.get(device_id)
        if unit is None:
            raise NoSuchIdException(f"no unit {device_id}")
        unit.requests += 1
        fault = unit.fault
        if fault is not None:
            if fault.kind == "silent":
                raise NoSuchIdException(f"unit {device_id} is silent")
            if fault.kind == "exception":
                return ExcCodes(fault.code)
            if fault.kind == "slow":
                await asyncio.sleep(fault.delay_s)
        table = _FC_TABLE.get(func_code)
        if table is None:
            return ExcCodes.ILLEGAL_FUNCTION
        if address + count > unit.size:
            return ExcCodes.ILLEGAL_ADDRESS
        self.served += 1
        values = unit.get(table, address, count)
        if fault is not None and fault.kind == "short" and count > 1:
            values = values[: count // 2]
        if table in ("coil", "discrete"):
            return [bool(v) for v in values]
        return values

    async def async_setValues(
        self, device_id: int, func_code: int, address: int, values: Sequence[int] | Sequence[bool]
    ) -> ExcCodes | None:
        return ExcCodes.ILLEGAL_FUNCTION

    def device_ids(self) -> list[int]:
        return list(self.units)


class ConverterServer:
    """One simulated converter (host 127.0.0.1, one port) and the units behind it."""

    def __init__(self, port: int, units: dict[int, Unit] | None = None, host: str = "127.0.0.1"):
        self.host = host
        self.port = port
        self.units: dict[int, Unit] = units if units is not None else {}
        self._context = _Context(self.units)
        self._server: Any = None

    @property
    def served(self) -> int:
        """Requests answered with data so far."""
        return self._context.served

    def unit(self, unit_id: int) -> Unit:
        return self.units.setdefault(unit_id, Unit())

    def set_fault(self, unit_id: int, fault: Fault | None) -> None:
        self.units[unit_id].fault = fault

    def _mangle(self, sending: bool, data: bytes) -> bytes:
        if not sending or len(data) < 8:
            return data
        unit = self.units.get(data[6])
        fault = unit.fault if unit is not None else None
        if fault is None or data[7] & 0x80:
            return data
        if fault.kind == "truncated":
            return data[: max(8, len(data) - 3)]
        if fault.kind == "garbled":
            return b"\x13\x37\xde\xad" + bytes(len(data) - 4)
        if fault.kind == "wrong_tid":
            tid = (int.from_bytes(data[0:2], "big") + 7) & 0xFFFF
            return tid.to_bytes(2, "big") + data[2:]
        if fault.kind == "wrong_unit":
            return data[:6] + bytes(((data[6] + 1) & 0xFF,)) + data[7:]
        return data

    async def start(self) -> None:
        self._server = ModbusTcpServer(
            self._context,
            address=(self.host, self.port),
            ignore_missing_devices=True,
            trace_packet=self._mangle,
        )
        await self._server.serve_forever(background=True)

    def drop_connections(self) -> int:
        """Close every client connection now; returns how many there were."""
        if self._server is None:
            return 0
        conns = list(self._server.active_connections.values())
        for c in conns:
            if c.transport is not None:
                c.transport.abort()
        return len(conns)

    async def stop(self) -> None:
        if self._server is not None:
            self.drop_connections()
            with contextlib.suppress(Exception):
                await self._server.shutdown()
            self._server = None
            await asyncio.sleep(0)
