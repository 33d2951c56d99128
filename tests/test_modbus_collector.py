"""The collector against real pymodbus servers playing a small building."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from collectors.modbus.collector import build_pollers
from collectors.modbus.poller import DevicePoller
from collectors.modbus.transport import ErrorKind
from gateway.clock import SystemClock
from gateway.config.modbus import ModbusConfig
from gateway.metrics import Metrics
from simulators.modbus.building import SAFETY, BuildingSim, Layout, running_building
from simulators.modbus.server import Fault

FAST = {"timeout_s": 0.5, "retries": 0, "backoff_min_s": 0.05, "backoff_max_s": 0.2}


def make(sim: BuildingSim, **opts: Any) -> tuple[dict[str, DevicePoller], Metrics]:
    section = sim.modbus_section(**{**FAST, **opts})
    config = ModbusConfig.model_validate(section)
    metrics = Metrics()
    _, pollers = build_pollers(config, SystemClock(), metrics, random.Random(1))
    return {p.device: p for p, _ in pollers}, metrics


def values(outcome_readings: list[Any]) -> dict[str, float]:
    return {r.metric: r.value for r in outcome_readings}


async def test_every_profile_decodes_what_the_simulator_holds(modbus_building: BuildingSim) -> None:
    sim = modbus_building
    local_s = (sim.start_ms // 1000 + 8 * 3600) % 86_400
    evening = sim.start_ms + (21 * 3600 - local_s) % 86_400 * 1000  # 21:00 local
    sim.step_to(evening)  # lights, laptops, the capped room's heater
    pollers, _ = make(sim)
    for room in sim.rooms():
        floor, n = int(room[0]), int(room[1:])
        out = await pollers[f"m-{floor}-{n:02d}"].poll()
        assert out.ok
        got = values(out.readings)
        want = sim.meter(room)
        profile = sim.meter_unit(room)[2]
        assert got["voltage"] == pytest.approx(want.voltage, abs=0.05)
        assert got["current"] == pytest.approx(want.current, abs=0.005)
        assert got["power"] == pytest.approx(want.power, abs=0.5 if profile == "dds238" else 0.05)
        assert got["power_factor"] == pytest.approx(want.power_factor, abs=0.0015)
        assert got["frequency"] == pytest.approx(want.frequency, abs=0.005)
        assert got["energy"] == pytest.approx(sim.energy_kwh(room), abs=0.006)
        if profile == "sdm120":
            assert got["apparent_power"] == pytest.approx(want.apparent_power, abs=0.05)
        else:
            assert "apparent_power" not in got
    assert {sim.meter_unit(r)[2] for r in sim.rooms()} == {"sdm120", "dds238"}
    assert sim.meter("202").power > 1500  # the room over its cap
    for floor in (1, 2):
        out = await pollers[f"safety-{floor}"].poll()
        got = values(out.readings)
        want = sim.safety_state(floor)
        assert got == {
            "smoke": float(want.smoke),
            "fire_door": float(want.fire_door),
            "water_leak": float(want.water_leak),
            "tamper": float(want.tamper),
            "temperature": pytest.approx(want.temperature, abs=0.05),
            "humidity": pytest.approx(want.humidity, abs=0.05),
        }


async def test_safety_inputs_follow_the_simulator(modbus_building: BuildingSim) -> None:
    sim = modbus_building
    pollers, _ = make(sim)
    p = pollers["safety-2"]
    first = values((await p.poll()).readings)
    assert first["smoke"] == 0.0
    sim.servers[SAFETY].units[2].write("discrete", {0: True, 1: True})
    changed = values((await p.poll()).readings)
    assert changed == {"smoke": 1.0, "fire_door": 1.0}  # on change only; the rest unchanged
    assert values((await p.poll()).readings) == {}


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        (Fault("silent"), ErrorKind.TIMEOUT),
        (Fault("exception", code=4), ErrorKind.EXCEPTION),
        (Fault("exception", code=2), ErrorKind.EXCEPTION),
        (Fault("slow", delay_s=0.9), ErrorKind.TIMEOUT),
        (Fault("short"), ErrorKind.SHORT),
        (Fault("truncated"), ErrorKind.SHORT),
        (Fault("garbled"), ErrorKind.GARBLED),
        (Fault("wrong_tid"), ErrorKind.TID_MISMATCH),
        (Fault("wrong_unit"), ErrorKind.WRONG_UNIT),
    ],
    ids=lambda v: v.kind if isinstance(v, Fault) else str(v),
)
async def test_each_fault_is_a_counted_error_and_never_a_value_of_another_device(
    modbus_building: BuildingSim, fault: Fault, kind: ErrorKind
) -> None:
    sim = modbus_building
    pollers, metrics = make(sim)
    bad, good = pollers["m-1-01"], pollers["m-1-02"]
    sim.servers["conv-1"].set_fault(1, fault)
    out = await bad.poll()
    assert not out.ok
    assert out.readings == []
    assert bad.last_error is not None
    assert bad.last_error.kind is kind
    assert metrics.value("modbus_errors_total", device="m-1-01", kind=str(kind)) >= 1
    if fault.kind == "exception":
        assert bad.last_error.code == fault.code
    # the neighbour on the same connection answers with its own values, even right after a
    # late answer of the faulty unit arrives on the shared connection
    for _ in range(2):
        out = await good.poll()
        assert out.ok, good.last_error
    await asyncio.sleep(0.5)  # any late answer of the faulty unit has come by now
    good._filter.reset()
    out = await good.poll()
    assert out.ok, good.last_error
    assert values(out.readings)["power"] == pytest.approx(sim.meter("102").power, abs=0.05)
    assert metrics.value("modbus_errors_total", device="m-1-02", kind=str(kind)) == 0
    sim.servers["conv-1"].set_fault(1, None)
    out = await bad.poll()
    assert out.ok, bad.last_error
    assert values(out.readings)["voltage"] == pytest.approx(sim.meter("101").voltage, abs=0.05)


async def test_offline_once_and_online_once(modbus_building: BuildingSim) -> None:
    sim = modbus_building
    pollers, _ = make(sim)
    p = pollers["m-2-04"]
    statuses = []
    first = await p.poll()
    assert first.status is not None
    assert first.status.online
    sim.servers["conv-2"].set_fault(4, Fault("silent"))
    for _ in range(6):
        out = await p.poll()
        if out.status:
            statuses.append(out.status)
    assert [s.online for s in statuses] == [False]
    assert statuses[0].detail["error"] == "timeout"
    assert p.failures_in_row == 6
    # while offline, the collector asks only every n-th round (n = 5 by default)
    assert [p.due() for _ in range(10)] == [False, False, False, False, True] * 2
    sim.servers["conv-2"].set_fault(4, None)
    for _ in range(3):
        out = await p.poll()
        if out.status:
            statuses.append(out.status)
    assert [s.online for s in statuses] == [False, True]
    assert p.online


async def test_reconnects_after_the_server_restarts(modbus_building: BuildingSim) -> None:
    sim = modbus_building
    pollers, metrics = make(sim)
    p = pollers["m-1-03"]
    assert (await p.poll()).ok
    link = p.link
    assert link.connects == 1
    server = sim.servers["conv-1"]
    await server.stop()
    out = await p.poll()
    assert not out.ok
    assert p.last_error is not None
    assert p.last_error.kind is ErrorKind.DISCONNECTED
    await server.start()
    for _ in range(50):
        out = await p.poll()
        if out.ok:
            break
        await asyncio.sleep(0.05)
    assert out.ok, p.last_error
    assert link.connects == 2
    assert metrics.value("modbus_errors_total", device="m-1-03", kind="disconnected") >= 1


async def test_dropped_connection_mid_run_is_one_error_then_recovers(
    modbus_building: BuildingSim,
) -> None:
    sim = modbus_building
    pollers, _ = make(sim)
    p = pollers["m-1-01"]
    assert (await p.poll()).ok
    sim.servers["conv-1"].set_fault(1, Fault("slow", delay_s=0.15))
    task = asyncio.ensure_future(p.poll())
    await asyncio.sleep(0.05)
    assert sim.servers["conv-1"].drop_connections() == 1
    out = await task
    assert not out.ok
    assert p.last_error is not None
    assert p.last_error.kind is ErrorKind.DISCONNECTED
    sim.servers["conv-1"].set_fault(1, None)
    assert (await p.poll()).ok
    assert p.link.connects == 2


async def test_slow_points_are_read_every_nth_poll(modbus_building: BuildingSim) -> None:
    sim = modbus_building
    pollers, _ = make(sim)
    p = pollers["m-1-01"]  # SDM120: frequency and energy every 5th poll
    counts = []
    for _ in range(6):
        before = p.link.requests
        assert (await p.poll()).ok
        counts.append(p.link.requests - before)
    assert counts == [3, 1, 1, 1, 1, 3]
    dds = pollers["m-1-03"]
    before = dds.link.requests
    for _ in range(3):
        assert (await dds.poll()).ok
    assert dds.link.requests - before == 3  # one request holds all of a DDS238


async def test_a_running_building_advances_its_clock() -> None:
    async with running_building(Layout(floors=1, rooms=2, seed=2), speed=60, tick_s=0.05) as sim:
        pollers, _ = make(sim)
        t0 = sim.now_ms
        assert (await pollers["m-1-01"].poll()).ok
        await asyncio.sleep(0.2)
        assert sim.now_ms - t0 >= 6_000  # 60 virtual seconds a second
        out = await pollers["safety-1"].poll()
        assert out.ok
        # the clock may tick between the poll and this look (noise ±0.1 °C per second)
        assert pollers["safety-1"].last_values["temperature"] == pytest.approx(
            sim.safety_state(1).temperature, abs=0.5
        )
