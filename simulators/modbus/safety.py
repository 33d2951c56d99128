"""Pure model of floor safety modules and an incident timeline (smoke, doors, leaks, heat)."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

INPUTS = ("smoke", "fire_door", "water_leak", "tamper")


@dataclass(frozen=True, slots=True)
class Incident:
    at_s: float
    """Seconds after the simulation start."""
    floor: int
    kind: str
    """`smoke`, `fire_door`, `water_leak`, `tamper` (inputs at 1), or `heat` (temperature ramp)."""
    duration_s: float


@dataclass(frozen=True, slots=True)
class SafetySample:
    smoke: bool
    fire_door: bool
    water_leak: bool
    tamper: bool
    temperature: float
    humidity: float


def default_timeline(floors: int, seed: int) -> tuple[Incident, ...]:
    """A short demo timeline: a door held open, a leak, a fire with smoke and heat, a tamper."""
    rng = random.Random(f"{seed}:incidents")
    door, leak, fire, tamper = (rng.randint(1, floors) for _ in range(4))
    return (
        Incident(60, door, "fire_door", 400),
        Incident(180, leak, "water_leak", 300),
        Incident(300, fire, "heat", 240),
        Incident(330, fire, "smoke", 150),
        Incident(450, tamper, "tamper", 30),
    )


@dataclass(frozen=True, slots=True)
class SafetyModel:
    seed: int = 1
    timeline: tuple[Incident, ...] = ()
    utc_offset_s: int = 8 * 3600

    def active(self, floor: int, elapsed_s: float) -> list[Incident]:
        return [
            i
            for i in self.timeline
            if i.floor == floor and i.at_s <= elapsed_s < i.at_s + i.duration_s
        ]

    def sample(self, floor: int, ts_ms: int, elapsed_s: float) -> SafetySample:
        on = self.active(floor, elapsed_s)
        kinds = {i.kind for i in on}
        rng = random.Random(f"{self.seed}:floor{floor}:{ts_ms // 1000}")
        local_h = ((ts_ms // 1000 + self.utc_offset_s) % 86_400) / 3600.0
        temp = 23.0 + 2.5 * math.sin((local_h - 9.0) / 24.0 * 2 * math.pi) + rng.uniform(-0.1, 0.1)
        for i in on:
            if i.kind == "heat":
                temp += min(40.0, (elapsed_s - i.at_s) * 0.5)
        humidity = 55.0 + 5.0 * math.sin(local_h / 24.0 * 2 * math.pi) + rng.uniform(-0.3, 0.3)
        if "water_leak" in kinds:
            humidity = 88.0
        return SafetySample(
            smoke="smoke" in kinds,
            fire_door="fire_door" in kinds,
            water_leak="water_leak" in kinds,
            tamper="tamper" in kinds,
            temperature=round(temp, 1),
            humidity=round(humidity, 1),
        )
