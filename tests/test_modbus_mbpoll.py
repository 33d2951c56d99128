"""An independent client (mbpoll, libmodbus) reads the simulators; the gateway must agree."""

from __future__ import annotations

import asyncio
import random
import re
import shutil

import pytest

from collectors.modbus.collector import build_pollers
from gateway.clock import SystemClock
from gateway.config.modbus import ModbusConfig
from gateway.metrics import Metrics
from simulators.modbus.building import SAFETY, BuildingSim

pytestmark = pytest.mark.skipif(shutil.which("mbpoll") is None, reason="mbpoll is not installed")

LINE = re.compile(r"^\[(\d+)\]:\s+(-?[\d.e+-]+)(?: \((-?\d+)\))?\s*$", re.M)


async def mbpoll(port: int, unit: int, table: str, ref: int, count: int) -> dict[int, float]:
    """Read with 0-based references (`-0`), big-endian words for 32-bit types (`-B`)."""
    proc = await asyncio.create_subprocess_exec(
        "mbpoll", "-m", "tcp", "-p", str(port), "-a", str(unit), "-t", table, "-0", "-B",
        "-r", str(ref), "-c", str(count), "-1", "-o", "2", "127.0.0.1",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    # 16-bit registers print as unsigned with the signed value in brackets when negative
    return {int(a): float(signed or v) for a, v, signed in LINE.findall(out.decode())}


async def test_mbpoll_and_the_gateway_read_the_same_values(modbus_building: BuildingSim) -> None:
    sim = modbus_building
    config = ModbusConfig.model_validate(sim.modbus_section(timeout_s=1.0))
    _, pollers = build_pollers(config, SystemClock(), Metrics(), random.Random(1))
    decoded = {p.device: p for p, _ in pollers}
    for p in decoded.values():
        assert (await p.poll()).ok
    conv1 = sim.servers["conv-1"].port

    # SDM120 in room 101: float32 input registers
    gw = decoded["m-1-01"].last_values
    low = await mbpoll(conv1, 1, "3:float", 0, 16)
    assert low[0] == pytest.approx(gw["voltage"], rel=1e-5)
    assert low[6] == pytest.approx(gw["current"], rel=1e-5)
    assert low[12] == pytest.approx(gw["power"], rel=1e-5)
    assert low[18] == pytest.approx(gw["apparent_power"], rel=1e-5)
    assert low[30] == pytest.approx(gw["power_factor"], rel=1e-5)
    assert (await mbpoll(conv1, 1, "3:float", 0x46, 1))[0x46] == pytest.approx(
        gw["frequency"], rel=1e-5
    )
    assert (await mbpoll(conv1, 1, "3:float", 0x156, 1))[0x156] == pytest.approx(
        gw["energy"], rel=1e-5
    )

    # DDS238 in room 103: scaled integers in holding registers
    gw = decoded["m-1-03"].last_values
    regs = await mbpoll(conv1, 3, "4", 0, 18)
    assert (regs[0] * 65536 + regs[1]) * 0.01 == pytest.approx(gw["energy"])
    assert regs[12] * 0.1 == pytest.approx(gw["voltage"])
    assert regs[13] * 0.01 == pytest.approx(gw["current"])
    assert regs[14] == gw["power"]
    assert regs[16] * 0.001 == pytest.approx(gw["power_factor"])
    assert regs[17] * 0.01 == pytest.approx(gw["frequency"])

    # safety module of floor 2, with two inputs in alarm and a sub-zero temperature
    sim.servers[SAFETY].units[2].write("discrete", {1: True, 3: True})
    sim.servers[SAFETY].units[2].write("input", {0: (-125) & 0xFFFF})
    safety = decoded["safety-2"]
    assert (await safety.poll()).ok
    gw = safety.last_values
    bits = await mbpoll(sim.servers[SAFETY].port, 2, "1", 0, 4)
    assert [bits[i] for i in range(4)] == [
        gw["smoke"],
        gw["fire_door"],
        gw["water_leak"],
        gw["tamper"],
    ]
    assert [bits[1], bits[3]] == [1.0, 1.0]
    climate = await mbpoll(sim.servers[SAFETY].port, 2, "3", 0, 2)
    assert climate[0] * 0.1 == pytest.approx(gw["temperature"]) == -12.5
    assert climate[1] * 0.1 == pytest.approx(gw["humidity"])
