"""The simulators' pure models: loads, incidents, register images, fault flags."""

from __future__ import annotations

import argparse
import struct

import pytest

from simulators.modbus.building import SAFETY, BuildingSim, Layout
from simulators.modbus.cli import parse_fault
from simulators.modbus.load import DAY_S, LoadModel
from simulators.modbus.safety import Incident, SafetyModel, default_timeline
from simulators.modbus.server import Fault

T0 = 1_780_000_000_000  # 2026-05-28 20:26:40 UTC, 04:26:40 in Asia/Shanghai


def at_local(hour: float, day: int = 0) -> int:
    """Epoch ms of a local (UTC+8) time on the day of T0 (+ day)."""
    local_s = (T0 // 1000 + 8 * 3600) % DAY_S
    return T0 + round(((hour * 3600 - local_s) % DAY_S + day * DAY_S) * 1000)


def test_the_load_model_is_deterministic_from_seed_and_time() -> None:
    a, b, c = LoadModel(seed=5), LoadModel(seed=5), LoadModel(seed=6)
    times = [at_local(h) for h in (3, 8, 12.5, 19, 22)]
    rooms = [f"{f}{n:02d}" for f in range(1, 4) for n in range(1, 11)]
    assert [a.sample(r, t) for r in rooms for t in times] == [
        b.sample(r, t) for r in rooms for t in times
    ]
    assert [a.sample(r, t) for r in rooms for t in times] != [
        c.sample(r, t) for r in rooms for t in times
    ]


def test_meter_values_are_consistent() -> None:
    m = LoadModel(seed=2)
    for room in ("101", "215", "320"):
        for h in range(24):
            s = m.sample(room, at_local(h + 0.25))
            assert 215 < s.voltage < 240
            assert 49.9 < s.frequency < 50.1
            assert s.apparent_power >= s.power > 0
            assert s.power_factor == pytest.approx(s.power / s.apparent_power, abs=0.005)
            assert s.current == pytest.approx(s.apparent_power / s.voltage, abs=0.01)


def test_nights_are_chargers_and_resistive_loads_are_steps_at_pf_near_one() -> None:
    m = LoadModel(seed=3)
    rooms = [f"{f}{n:02d}" for f in range(1, 7) for n in range(1, 21)]
    night = [m.sample(r, at_local(3.0)) for r in rooms]
    assert all(s.power < 80 for s in night)
    assert all("charger" in s.appliances for s in night)
    resistive = 0
    for day in range(3):
        for r in rooms:
            for h in range(7 * 60, 24 * 60, 2):
                ts = at_local(h / 60, day)
                on = m.appliances(r, ts)
                kinds = {a.kind for a in on}
                if kinds & {"kettle", "hot_plate", "heater"}:
                    resistive += 1
                    big = [a for a in on if a.kind in ("kettle", "hot_plate", "heater")]
                    assert all(a.watts >= 700 and a.pf >= 0.99 for a in big)
    assert resistive > 0


def test_the_over_cap_room_runs_above_1500_w_for_hours() -> None:
    m = LoadModel(seed=4, over_cap_rooms=frozenset({"512"}))
    evening = [m.sample("512", at_local(21.0, d)).power for d in range(5)]
    assert all(p > 1500 for p in evening)
    assert m.sample("512", at_local(3.0)).power < 100


def test_incident_timeline() -> None:
    timeline = (
        Incident(10, 2, "smoke", 30),
        Incident(5, 2, "heat", 100),
        Incident(0, 1, "water_leak", 60),
    )
    s = SafetyModel(seed=1, timeline=timeline)
    assert not s.sample(2, T0, 9.9).smoke
    hot = s.sample(2, T0, 20)
    assert hot.smoke
    assert not hot.fire_door
    assert hot.temperature > s.sample(3, T0, 20).temperature + 5
    assert s.sample(2, T0, 95).temperature >= 50
    assert not s.sample(2, T0, 40).smoke
    assert s.sample(1, T0, 30).water_leak
    assert s.sample(1, T0, 30).humidity > 80
    tl = default_timeline(6, 1)
    assert {i.kind for i in tl} == {"fire_door", "water_leak", "heat", "smoke", "tamper"}
    assert tl == default_timeline(6, 1)


def test_building_registers_and_energy() -> None:
    sim = BuildingSim(Layout(floors=2, rooms=3, seed=9), start_ms=T0, timeline=())
    conv, unit, profile = sim.meter_unit("101")
    assert (conv, unit, profile) == ("conv-1", 1, "sdm120")
    assert sim.meter_unit("203") == ("conv-2", 3, "dds238")
    regs = sim.servers["conv-1"].units[1].get("input", 0, 2)
    (volts,) = struct.unpack(">f", struct.pack(">HH", *regs))
    assert volts == pytest.approx(sim.meter("101").voltage, abs=1e-4)
    e0, p0 = sim.energy_kwh("203"), sim.meter("203").power
    sim.step_to(T0 + 3_600_000)
    assert sim.energy_kwh("203") == pytest.approx(e0 + p0 / 1000)
    hi, lo = sim.servers["conv-2"].units[3].get("holding", 0, 2)
    assert (hi << 16 | lo) == round(sim.energy_kwh("203") * 100)
    assert sim.servers[SAFETY].units[2].get("discrete", 0, 4) == [0, 0, 0, 0]
    with pytest.raises(ValueError, match="never goes back"):
        sim.step_to(T0)
    section = sim.modbus_section(timeout_s=0.5)
    assert section["floors"][0]["profile_by_room"] == {3: "dds238"}
    assert section["converters"][0]["timeout_s"] == 0.5


def test_fault_arguments() -> None:
    assert parse_fault("conv-3:12:silent") == ("conv-3", 12, Fault("silent"))
    assert parse_fault("safety:2:exception:6") == ("safety", 2, Fault("exception", code=6))
    assert parse_fault("conv-1:4:slow:2.5") == ("conv-1", 4, Fault("slow", delay_s=2.5))
    with pytest.raises(argparse.ArgumentTypeError, match="KIND one of"):
        parse_fault("conv-1:4:melt")
