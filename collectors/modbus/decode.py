"""Pure decoders from Modbus register and bit values to engineering values.

A register is an unsigned 16-bit int as it arrives on the wire (big-endian inside the frame).
`byte_order` says whether a device swapped the two bytes of each register, `word_order` whether
the most significant register of a 32-bit value comes first (`big`) or last (`little`).
"""

from __future__ import annotations

import enum
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass


class Table(enum.StrEnum):
    """The four Modbus data tables, named by what they hold."""

    COIL = "coil"  # FC01
    DISCRETE = "discrete"  # FC02
    HOLDING = "holding"  # FC03
    INPUT = "input"  # FC04

    @property
    def is_bits(self) -> bool:
        return self in (Table.COIL, Table.DISCRETE)


class DataType(enum.StrEnum):
    BOOL = "bool"
    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    FLOAT32 = "float32"

    @property
    def width(self) -> int:
        """Registers (or bits, for `bool`) one value occupies."""
        return 2 if self in (DataType.INT32, DataType.UINT32, DataType.FLOAT32) else 1


class Order(enum.StrEnum):
    BIG = "big"
    LITTLE = "little"


class DecodeError(ValueError):
    """The raw values cannot be a value of this point (wrong length, NaN, out of range)."""


_STRUCT = {
    DataType.INT16: ">h",
    DataType.UINT16: ">H",
    DataType.INT32: ">i",
    DataType.UINT32: ">I",
    DataType.FLOAT32: ">f",
}


@dataclass(frozen=True, slots=True)
class Encoding:
    """How one value sits in its registers or bit, and how to scale it."""

    type: DataType = DataType.UINT16
    word_order: Order = Order.BIG
    byte_order: Order = Order.BIG
    scale: float = 1.0
    offset: float = 0.0


def _wire_bytes(registers: Sequence[int], enc: Encoding) -> bytes:
    words = list(registers)
    if enc.word_order is Order.LITTLE:
        words.reverse()
    out = bytearray()
    for w in words:
        if not 0 <= w <= 0xFFFF:
            raise DecodeError(f"register value {w} is not a 16-bit unsigned int")
        hi, lo = w >> 8, w & 0xFF
        out += bytes((lo, hi)) if enc.byte_order is Order.LITTLE else bytes((hi, lo))
    return bytes(out)


def decode_registers(registers: Sequence[int], enc: Encoding) -> float:
    """Decode one value from exactly `enc.type.width` registers, then scale and offset it."""
    if enc.type is DataType.BOOL:
        raise DecodeError("bool points are read from coils or discrete inputs")
    if len(registers) != enc.type.width:
        raise DecodeError(f"{enc.type} needs {enc.type.width} registers, got {len(registers)}")
    (raw,) = struct.unpack(_STRUCT[enc.type], _wire_bytes(registers, enc))
    # a float32 carries ~7 significant digits: 228.7 arrives as 228.6999969…, store 228.7
    value = float(f"{raw:.7g}") if enc.type is DataType.FLOAT32 else float(raw)
    if not math.isfinite(value):
        raise DecodeError(f"{enc.type} value is not finite: {value}")
    return value * enc.scale + enc.offset


def decode_bit(bit: bool | int, enc: Encoding) -> float:
    """A coil or discrete input as 0.0 / 1.0 (scale and offset apply, e.g. to invert it)."""
    return (1.0 if bit else 0.0) * enc.scale + enc.offset


def encode_registers(value: float, enc: Encoding) -> list[int]:
    """The inverse of `decode_registers` (used to write set points and by tests)."""
    raw = (value - enc.offset) / enc.scale
    if enc.type is DataType.BOOL:
        raise DecodeError("bool points are not registers")
    packed = struct.pack(_STRUCT[enc.type], raw if enc.type is DataType.FLOAT32 else round(raw))
    words: list[int] = []
    for i in range(0, len(packed), 2):
        hi, lo = packed[i], packed[i + 1]
        words.append((lo << 8 | hi) if enc.byte_order is Order.LITTLE else (hi << 8 | lo))
    if enc.word_order is Order.LITTLE:
        words.reverse()
    return words
