"""Register images of the simulated devices, written from the device spec's tables.

Kept independent of the collector's profile files on purpose: the tests compare what the
collector decodes with what these encoders wrote.
"""

from __future__ import annotations

import struct

from simulators.modbus.load import MeterSample
from simulators.modbus.safety import SafetySample


def f32(value: float) -> list[int]:
    hi, lo = struct.unpack(">HH", struct.pack(">f", value))
    return [hi, lo]


def u32(value: int) -> list[int]:
    return [(value >> 16) & 0xFFFF, value & 0xFFFF]


def i16(value: int) -> int:
    return value & 0xFFFF


def sdm120_input(sample: MeterSample, energy_kwh: float) -> dict[int, int]:
    """Input registers (FC04) of an SDM120, float32 big-endian."""
    regs: dict[int, int] = {}
    for addr, value in (
        (0x0000, sample.voltage),
        (0x0006, sample.current),
        (0x000C, sample.power),
        (0x0012, sample.apparent_power),
        (0x001E, sample.power_factor),
        (0x0046, sample.frequency),
        (0x0156, energy_kwh),
    ):
        regs[addr], regs[addr + 1] = f32(value)
    return regs


def dds238_holding(sample: MeterSample, energy_kwh: float) -> dict[int, int]:
    """Holding registers (FC03) of a DDS238-2, scaled big-endian integers."""
    e0, e1 = u32(round(energy_kwh * 100))
    return {
        0x0000: e0,
        0x0001: e1,
        0x000C: round(sample.voltage * 10) & 0xFFFF,
        0x000D: round(sample.current * 100) & 0xFFFF,
        0x000E: i16(round(sample.power)),
        0x0010: round(sample.power_factor * 1000) & 0xFFFF,
        0x0011: round(sample.frequency * 100) & 0xFFFF,
    }


def safety_discrete(sample: SafetySample) -> dict[int, bool]:
    return {0: sample.smoke, 1: sample.fire_door, 2: sample.water_leak, 3: sample.tamper}


def safety_input(sample: SafetySample) -> dict[int, int]:
    return {0: i16(round(sample.temperature * 10)), 1: round(sample.humidity * 10) & 0xFFFF}
