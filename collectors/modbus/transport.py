"""Modbus TCP client adapter: the only module of the gateway that imports pymodbus (3.16.x).

One `ModbusLink` per converter (host, port): one TCP connection shared by all unit ids behind
it, requests serialised, a timeout and retries per request, reconnection with capped jittered
backoff, TCP_NODELAY. Every failure surfaces as a `ModbusError` with a `kind`, so callers count
it per device; nothing here raises anything else for a bad answer.

Wire anomalies that pymodbus skips silently (an answer with another transaction id or unit id,
a truncated frame) or that would abort its protocol callback (an undecodable frame) are seen in
its `trace_packet` hook, so a request that then fails is classified by what really happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import random
import socket
from collections.abc import Sequence
from typing import Any

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException, ModbusIOException
from pymodbus.pdu import ModbusPDU

from collectors.modbus.decode import Table
from gateway.clock import Clock, SystemClock

# Failures are classified, counted and logged once per device by the collector; pymodbus
# would otherwise log every skipped frame and timeout at ERROR.
logging.getLogger("pymodbus").setLevel(logging.CRITICAL)

_VALID_FC = {1, 2, 3, 4}


class ErrorKind(enum.StrEnum):
    TIMEOUT = "timeout"
    EXCEPTION = "exception"  # a Modbus exception response
    SHORT = "short"  # fewer values than asked, or a truncated frame
    GARBLED = "garbled"  # a frame that is not Modbus TCP or does not decode
    TID_MISMATCH = "tid_mismatch"  # an answer to another transaction
    WRONG_UNIT = "wrong_unit"  # an answer from another unit id
    DISCONNECTED = "disconnected"  # no connection, or it dropped during the request


class ModbusError(Exception):
    def __init__(self, kind: ErrorKind, detail: str, code: int | None = None) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail
        self.code = code


class ModbusLink:
    """The connection to one converter and everything behind it."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        timeout_s: float = 1.0,
        retries: int = 1,
        backoff_min_s: float = 0.5,
        backoff_max_s: float = 30.0,
        rng: random.Random | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_min_s = backoff_min_s
        self.backoff_max_s = backoff_max_s
        self._rng = rng or random.Random()
        self._clock = clock or SystemClock()
        self._lock = asyncio.Lock()
        self._client: AsyncModbusTcpClient | None = None
        self._backoff_s = 0.0
        self._next_connect_at = 0.0
        self._anomaly: tuple[ErrorKind, str] | None = None
        self._pending: Any = None
        self._expect_unit = 0
        self.connects = 0
        """Successful connections so far (the first one included)."""
        self.requests = 0
        """Requests answered with data so far."""
        self.values = 0
        """Registers or bits received so far."""

    @property
    def connected(self) -> bool:
        return self._client is not None and self._client.connected

    async def close(self) -> None:
        async with self._lock:
            self._drop()

    def _drop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _trace_connect(self, up: bool) -> None:
        if not up:
            self._anomaly = self._anomaly or (ErrorKind.DISCONNECTED, "connection dropped")
            self._abort_request()

    def _abort_request(self) -> None:
        # Resolve the future pymodbus' `execute` waits on, so the request fails now rather
        # than at its timeout (the classification is in `self._anomaly`).
        ctx = self._pending
        if ctx is not None and not ctx.response_future.done():
            ctx.response_future.set_exception(ModbusIOException("aborted"))

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        if sending or self._client is None:
            return data
        expect_tid = self._client.ctx.request_transaction_id
        if len(data) < 8:
            self._anomaly = (ErrorKind.SHORT, f"{len(data)} bytes, not a whole frame")
            return data
        tid = int.from_bytes(data[0:2], "big")
        pid = int.from_bytes(data[2:4], "big")
        length = int.from_bytes(data[4:6], "big")
        unit, fc = data[6], data[7] & 0x7F
        if pid != 0 or length < 2 or length > 254 or fc not in _VALID_FC:
            self._anomaly = (ErrorKind.GARBLED, f"not a Modbus TCP answer: {data[:12].hex()}")
            self._abort_request()
            # pymodbus would raise inside the protocol callback; the stream is out of step
            # anyway, so hand it nothing and let the request fail and the link reconnect.
            return b""
        if tid != expect_tid:
            self._anomaly = (
                ErrorKind.TID_MISMATCH,
                f"answer to transaction {tid}, not {expect_tid}",
            )
        elif unit != self._expect_unit:
            self._anomaly = (ErrorKind.WRONG_UNIT, f"answer from unit {unit}")
        elif len(data) < 6 + length:
            self._anomaly = (ErrorKind.SHORT, f"frame cut at {len(data)} of {6 + length} bytes")
        return data

    async def _ensure_connected(self) -> AsyncModbusTcpClient:
        if self._client is not None and self._client.connected:
            return self._client
        self._drop()
        now = self._clock.monotonic()
        if now < self._next_connect_at:
            raise ModbusError(
                ErrorKind.DISCONNECTED,
                f"{self.host}:{self.port} unreachable, next attempt in "
                f"{self._next_connect_at - now:.1f} s",
            )
        client = AsyncModbusTcpClient(
            self.host,
            port=self.port,
            timeout=self.timeout_s,
            retries=0,
            reconnect_delay=0,
            trace_packet=self._trace_packet,
            trace_connect=self._trace_connect,
        )
        client.set_max_no_responses(1_000_000)
        ok = False
        with contextlib.suppress(OSError, ModbusException):
            ok = await client.connect()
        if not ok:
            client.close()
            self._backoff_s = min(self.backoff_max_s, max(self.backoff_min_s, self._backoff_s * 2))
            wait = self._backoff_s * self._rng.uniform(0.75, 1.25)
            self._next_connect_at = self._clock.monotonic() + wait
            raise ModbusError(
                ErrorKind.DISCONNECTED,
                f"cannot connect to {self.host}:{self.port}, retrying in {wait:.1f} s",
            )
        self._backoff_s = 0.0
        transport = client.ctx.transport
        sock = transport.get_extra_info("socket") if transport is not None else None
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._client = client
        self.connects += 1
        return client

    async def read(self, unit: int, table: Table, address: int, count: int) -> list[int]:
        """Read `count` registers (or bits, as 0/1) of one unit; raises `ModbusError`."""
        async with self._lock:
            attempt = 0
            while True:
                try:
                    return await self._read_once(unit, table, address, count)
                except ModbusError as exc:
                    if exc.kind is not ErrorKind.TIMEOUT or attempt >= self.retries:
                        raise
                    attempt += 1

    async def _read_once(self, unit: int, table: Table, address: int, count: int) -> list[int]:
        client = await self._ensure_connected()
        self._anomaly = None
        self._expect_unit = unit
        if table is Table.INPUT:
            call = client.read_input_registers(address, count=count, device_id=unit)
        elif table is Table.HOLDING:
            call = client.read_holding_registers(address, count=count, device_id=unit)
        elif table is Table.DISCRETE:
            call = client.read_discrete_inputs(address, count=count, device_id=unit)
        else:
            call = client.read_coils(address, count=count, device_id=unit)
        # pymodbus times the request out itself; a dropped or garbled connection fails it early.
        self._pending = client.ctx
        try:
            response: ModbusPDU = await call
        except ModbusException as exc:
            kind, detail = self._anomaly or (
                (ErrorKind.TIMEOUT, f"no answer within {self.timeout_s} s")
                if self.connected
                else (ErrorKind.DISCONNECTED, str(exc))
            )
            # A late answer must never be taken for the answer to a later request (some
            # converters even relabel it with the later transaction id): start afresh.
            self._drop()
            raise ModbusError(kind, detail) from None
        finally:
            self._pending = None
        if response.isError():
            code = int(response.exception_code)
            raise ModbusError(ErrorKind.EXCEPTION, f"exception code {code}", code)
        values: Sequence[int] | Sequence[bool] = (
            response.bits if table.is_bits else response.registers
        )
        expected = (count + 7) // 8 * 8 if table.is_bits else count
        if response.dev_id != unit or len(values) != expected:
            self._drop()
            if response.dev_id != unit:
                raise ModbusError(ErrorKind.WRONG_UNIT, f"answer from unit {response.dev_id}")
            kind = ErrorKind.SHORT if len(values) < expected else ErrorKind.GARBLED
            raise ModbusError(kind, f"{len(values)} values in the answer to a read of {count}")
        self.requests += 1
        self.values += count
        return [int(v) for v in values[:count]]
