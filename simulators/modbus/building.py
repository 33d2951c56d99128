"""A building's Modbus devices: one converter per floor for its room meters, one for the
floor safety modules (unit id = floor), all driven by the load and safety models on a virtual
clock.

`step_to(ts_ms)` sets the virtual time and rewrites every register; `run()` advances it in
real time (times `speed`). What each register holds is always readable from `servers`.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from simulators.broker import free_ports
from simulators.modbus.load import LoadModel, MeterSample
from simulators.modbus.registers import (
    dds238_holding,
    safety_discrete,
    safety_input,
    sdm120_input,
)
from simulators.modbus.safety import Incident, SafetyModel, SafetySample, default_timeline
from simulators.modbus.server import ConverterServer, Unit

SAFETY = "safety"


@dataclass(frozen=True, slots=True)
class Layout:
    floors: int = 6
    rooms: int = 20
    """Rooms per floor; room n of floor f is `f{n:02d}`, its meter unit id n."""
    dds238_every: int = 3
    """Every that many rooms has a DDS238 meter instead of an SDM120 (0: none)."""
    seed: int = 1
    over_cap_rooms: tuple[str, ...] | None = None
    """Rooms running over the cap every evening; one drawn from the seed when None."""

    def room(self, floor: int, n: int) -> str:
        return f"{floor}{n:02d}"

    def profile(self, n: int) -> str:
        return "dds238" if self.dds238_every and n % self.dds238_every == 0 else "sdm120"

    def conv_id(self, floor: int) -> str:
        return f"conv-{floor}"

    def capped_rooms(self) -> tuple[str, ...]:
        if self.over_cap_rooms is not None:
            return self.over_cap_rooms
        rng = random.Random(f"{self.seed}:over-cap")
        return (self.room(rng.randint(1, self.floors), rng.randint(1, self.rooms)),)


@dataclass(slots=True)
class _Meter:
    floor: int
    n: int
    room: str
    profile: str
    energy_kwh: float
    sample: MeterSample | None = None


@dataclass(slots=True)
class BuildingSim:
    layout: Layout = field(default_factory=Layout)
    start_ms: int = 1_780_000_000_000
    timeline: tuple[Incident, ...] | None = None
    ports: dict[str, int] = field(default_factory=dict)
    """Port per converter id (`conv-{floor}`, `safety`); required for `start()`."""
    servers: dict[str, ConverterServer] = field(init=False, default_factory=dict)
    load: LoadModel = field(init=False)
    safety: SafetyModel = field(init=False)
    now_ms: int = field(init=False)
    _meters: dict[str, _Meter] = field(init=False, default_factory=dict)
    _safety_now: dict[int, SafetySample] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        lay = self.layout
        self.load = LoadModel(seed=lay.seed, over_cap_rooms=frozenset(lay.capped_rooms()))
        tl = default_timeline(lay.floors, lay.seed) if self.timeline is None else self.timeline
        self.safety = SafetyModel(seed=lay.seed, timeline=tl)
        rng = random.Random(f"{lay.seed}:energy")
        for f in range(1, lay.floors + 1):
            conv = self.servers[lay.conv_id(f)] = ConverterServer(self.ports.get(lay.conv_id(f), 0))
            for n in range(1, lay.rooms + 1):
                room = lay.room(f, n)
                self._meters[room] = _Meter(f, n, room, lay.profile(n), rng.uniform(800, 4000))
                conv.units[n] = Unit()
        sconv = self.servers[SAFETY] = ConverterServer(self.ports.get(SAFETY, 0))
        for f in range(1, lay.floors + 1):
            sconv.units[f] = Unit()
        self.now_ms = self.start_ms
        self._write_all(0.0)

    # -- state -------------------------------------------------------------------------------

    def meter(self, room: str) -> MeterSample:
        sample = self._meters[room].sample
        assert sample is not None
        return sample

    def energy_kwh(self, room: str) -> float:
        return self._meters[room].energy_kwh

    def meter_unit(self, room: str) -> tuple[str, int, str]:
        """(converter id, unit id, profile) of a room's meter."""
        m = self._meters[room]
        return self.layout.conv_id(m.floor), m.n, m.profile

    def safety_state(self, floor: int) -> SafetySample:
        return self._safety_now[floor]

    def rooms(self) -> list[str]:
        return list(self._meters)

    # -- time --------------------------------------------------------------------------------

    def step_to(self, ts_ms: int) -> None:
        """Move the virtual clock forward, integrate energy, rewrite every register."""
        if ts_ms < self.now_ms:
            raise ValueError("the simulated clock never goes back")
        dt_h = (ts_ms - self.now_ms) / 3_600_000
        for m in self._meters.values():
            if m.sample is not None:
                m.energy_kwh += m.sample.power / 1000.0 * dt_h
        self.now_ms = ts_ms
        self._write_all((ts_ms - self.start_ms) / 1000.0)

    def _write_all(self, elapsed_s: float) -> None:
        for m in self._meters.values():
            m.sample = self.load.sample(m.room, self.now_ms)
            unit = self.servers[self.layout.conv_id(m.floor)].units[m.n]
            if m.profile == "sdm120":
                unit.write("input", sdm120_input(m.sample, m.energy_kwh))
            else:
                unit.write("holding", dds238_holding(m.sample, m.energy_kwh))
        for f, unit in self.servers[SAFETY].units.items():
            s = self._safety_now[f] = self.safety.sample(f, self.now_ms, elapsed_s)
            unit.write("discrete", safety_discrete(s))
            unit.write("input", safety_input(s))

    async def run(self, speed: float = 1.0, tick_s: float = 1.0) -> None:
        """Advance the virtual clock with real time × `speed`, one step per `tick_s`."""
        t0, v0 = time.monotonic(), self.now_ms
        while True:
            await asyncio.sleep(tick_s)
            self.step_to(v0 + round((time.monotonic() - t0) * speed * 1000))

    # -- servers -----------------------------------------------------------------------------

    async def start(self) -> None:
        for conv_id, server in self.servers.items():
            if not server.port:
                raise ValueError(f"no port for converter {conv_id}")
            await server.start()

    async def stop(self) -> None:
        for server in self.servers.values():
            await server.stop()

    def modbus_section(self, host: str = "127.0.0.1", **converter_opts: Any) -> dict[str, Any]:
        """The gateway's `modbus:` section for this building (plain data, YAML-ready)."""
        lay = self.layout
        convs = [
            {"id": cid, "host": host, "port": s.port, **converter_opts}
            for cid, s in self.servers.items()
        ]
        floors = [
            {
                "floor": f,
                "converter": lay.conv_id(f),
                "rooms": lay.rooms,
                "profile": "sdm120",
                "profile_by_room": {
                    n: lay.profile(n) for n in range(1, lay.rooms + 1) if lay.profile(n) != "sdm120"
                },
            }
            for f in range(1, lay.floors + 1)
        ]
        safety = [{"floor": f, "converter": SAFETY} for f in range(1, lay.floors + 1)]
        return {
            "enabled": True,
            "converters": convs,
            "floors": floors,
            "safety": safety,
        }


@contextlib.asynccontextmanager
async def running_building(
    layout: Layout | None = None,
    *,
    speed: float = 1.0,
    tick_s: float = 1.0,
    host: str = "127.0.0.1",
    timeline: tuple[Incident, ...] | None = None,
) -> AsyncIterator[BuildingSim]:
    """A simulated building on free ports of `host`, its clock running, for demos and tests:

    async with running_building(Layout(seed=3), speed=10) as sim:
        config_overrides = {"modbus": sim.modbus_section()}
    """
    layout = layout or Layout()
    ids = [layout.conv_id(f) for f in range(1, layout.floors + 1)] + [SAFETY]
    sim = BuildingSim(
        layout,
        start_ms=time.time_ns() // 1_000_000,
        timeline=timeline,
        ports=dict(zip(ids, free_ports(len(ids), host), strict=True)),
    )
    for server in sim.servers.values():
        server.host = host
    await sim.start()
    clock = asyncio.create_task(sim.run(speed=speed, tick_s=tick_s), name="modbus-sim-clock")
    try:
        yield sim
    finally:
        clock.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await clock
        await sim.stop()
