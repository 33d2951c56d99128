"""Pure load model of dorm rooms: what each room's meter reads at a virtual time.

Deterministic from (seed, room, time): each room's day is drawn from an RNG seeded by
(seed, room, local date), so any instant can be computed without replaying the past, and the
rule engine's tests can ask what a room drew at any time. Energy is the only integrated value
and lives with whoever steps the clock (the simulator), not here.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from functools import lru_cache

DAY_S = 86_400


@dataclass(frozen=True, slots=True)
class Appliance:
    kind: str  # base, lights, laptop, charger, kettle, hot_plate, heater
    start_s: int  # seconds since local midnight
    end_s: int
    watts: float
    pf: float


@dataclass(frozen=True, slots=True)
class MeterSample:
    voltage: float
    current: float
    power: float
    apparent_power: float
    power_factor: float
    frequency: float
    appliances: tuple[str, ...]


def _window(
    rng: random.Random, lo_h: float, hi_h: float, min_len_h: float, max_len_h: float
) -> tuple[int, int]:
    length = rng.uniform(min_len_h, max_len_h)
    start = rng.uniform(lo_h, max(lo_h, hi_h - length))
    return int(start * 3600), int((start + length) * 3600)


def day_plan(seed: int, room: str, day: int, over_cap: bool = False) -> tuple[Appliance, ...]:
    """The appliances a room runs on one local day (day = days since the epoch)."""
    return _day_plan(seed, room, day, over_cap)


@lru_cache(maxsize=4096)
def _day_plan(seed: int, room: str, day: int, over_cap: bool) -> tuple[Appliance, ...]:
    rng = random.Random(f"{seed}:{room}:{day}")
    plan: list[Appliance] = [Appliance("base", 0, DAY_S, rng.uniform(25, 45), 0.85)]
    for lo, hi, mn, mx in ((6.5, 8.0, 0.5, 1.2), (18.0, 23.8, 3.0, 5.5)):
        s, e = _window(rng, lo, hi, mn, mx)
        plan.append(Appliance("lights", s, e, rng.uniform(20, 40), 0.95))
    for _ in range(rng.randint(1, 4)):
        for _ in range(rng.randint(1, 3)):
            s, e = _window(rng, 9.0, 24.0, 0.7, 3.0)
            plan.append(Appliance("laptop", s, e, rng.uniform(40, 65), 0.6))
    for _ in range(rng.randint(2, 4)):
        s = int(rng.uniform(22.5, 24.0) * 3600)
        plan.append(Appliance("charger", s, DAY_S, rng.uniform(5, 10), 0.5))
        plan.append(
            Appliance("charger", 0, int(rng.uniform(5.0, 7.5) * 3600), rng.uniform(5, 10), 0.5)
        )
    if rng.random() < 0.35:
        for _ in range(rng.randint(1, 2)):
            s = int(rng.uniform(7.0, 23.0) * 3600)
            plan.append(
                Appliance("kettle", s, s + rng.randint(120, 240), rng.uniform(1500, 2000), 1.0)
            )
    if rng.random() < 0.08:
        s, e = _window(rng, 17.0, 23.0, 0.3, 0.7)
        plan.append(Appliance("hot_plate", s, e, rng.uniform(800, 1200), 0.99))
    if rng.random() < 0.06:
        s, e = _window(rng, 19.0, 24.0, 1.0, 2.5)
        plan.append(Appliance("heater", s, e, rng.uniform(1000, 1500), 1.0))
    if over_cap:
        s, e = _window(rng, 19.0, 23.0, 2.0, 3.0)
        plan.append(Appliance("heater", s, e, rng.uniform(1800, 2200), 1.0))
    return tuple(plan)


@dataclass(frozen=True, slots=True)
class LoadModel:
    """The building's meters: `sample(room, ts_ms)` is all a simulator or a test needs."""

    seed: int = 1
    utc_offset_s: int = 8 * 3600
    over_cap_rooms: frozenset[str] = frozenset()
    """Rooms that run more than the cap (1500 W) for hours every evening."""
    forced: tuple[tuple[str, Appliance, int], ...] = ()
    """Appliances switched on by an incident timeline: (room, appliance, local day)."""

    def appliances(self, room: str, ts_ms: int) -> tuple[Appliance, ...]:
        local_s = ts_ms // 1000 + self.utc_offset_s
        day, sec = divmod(local_s, DAY_S)
        plan = day_plan(self.seed, room, day, room in self.over_cap_rooms)
        extra = tuple(a for r, a, d in self.forced if r == room and d == day)
        return tuple(a for a in plan + extra if a.start_s <= sec < a.end_s)

    def sample(self, room: str, ts_ms: int) -> MeterSample:
        on = self.appliances(room, ts_ms)
        p = sum(a.watts for a in on)
        q = sum(a.watts * math.tan(math.acos(a.pf)) for a in on)
        s = math.hypot(p, q)
        t = ts_ms / 1000.0
        rng = random.Random(f"{self.seed}:{room}:{ts_ms // 1000}")
        local_h = ((ts_ms // 1000 + self.utc_offset_s) % DAY_S) / 3600.0
        voltage = 228.0 + 4.0 * math.sin((local_h - 4.0) / 24.0 * 2 * math.pi)
        voltage += rng.uniform(-0.8, 0.8) - p / 1000.0 * 1.5
        frequency = 50.0 + 0.03 * math.sin(t / 600.0) + rng.uniform(-0.01, 0.01)
        return MeterSample(
            voltage=round(voltage, 1),
            current=round(s / voltage, 2),
            power=round(p, 1),
            apparent_power=round(s, 1),
            power_factor=round(p / s, 3) if s > 0 else 1.0,
            frequency=round(frequency, 2),
            appliances=tuple(a.kind for a in on),
        )
