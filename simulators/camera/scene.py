"""Camera scenes as data: who is where at every instant, and the exact ground truth.

The simulated camera looks straight down on a corridor (the usual mounting for people
counting): a lane on the left where people cross a counting line in both directions, and a
waiting zone on the right where groups gather and disperse. Everything is decided from the
seed up front, so a seed gives the same clip every time and the ground truth is exact:
crossings per direction with their times, zone occupancy at any time, tamper and outage
intervals. Coordinates are pixels of the rendered frame; geometry is given as fractions of the
frame so the same scene renders at any resolution. No OpenCV here (see `render.py`).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Literal

TamperKind = Literal["cover", "blur", "shift"]
Lighting = Literal["steady", "drift", "switch"]

LINE_Y = 0.5
"""The counting line runs across the whole frame at this height; `in` is downwards."""
LANE_X = (0.04, 0.52)
"""Crossers walk in this horizontal band: `in` walkers in its left half, `out` in its right."""
ZONE = (0.55, 0.06, 0.97, 0.42)
"""The waiting zone (x0, y0, x1, y1) as fractions of the frame."""
ZONE_GRID = (6, 4)
"""Standing spots in the zone: columns, rows."""
BODY_W = 0.055
"""Shoulder width as a fraction of the frame width (about 0.5 m)."""
PX_PER_M_AT_640 = 70.0


@dataclass(frozen=True, slots=True)
class TamperSpec:
    kind: TamperKind
    start_s: float
    end_s: float


@dataclass(frozen=True, slots=True)
class SceneSpec:
    """What to generate. `density` is walkers per minute crossing the line (both ways)."""

    seed: int
    duration_s: float = 60.0
    width: int = 640
    height: int = 480
    fps: float = 10.0
    density: float = 15.0
    gatherings: tuple[int, ...] = ()
    """Sizes of gathering episodes in the zone (at most 24 each), spread over the clip."""
    lighting: Lighting = "steady"
    noise_sigma: float = 3.0
    tampers: tuple[TamperSpec, ...] = ()
    outages: tuple[tuple[float, float], ...] = ()
    """Intervals (start_s, end_s) when the stream delivers nothing."""
    warmup_s: float = 3.0
    """Seconds at the start with nobody in view (the analysis learns the background)."""


@dataclass(frozen=True, slots=True)
class Waypoint:
    t: float
    x: float
    y: float


@dataclass(slots=True)
class Person:
    """A person moving piecewise-linearly between waypoints; absent outside them."""

    waypoints: list[Waypoint]
    colour: tuple[int, int, int]
    hair: int
    stand_angle: float = 0.0

    def position(self, t: float) -> tuple[float, float, float] | None:
        """(x, y, heading in radians) at time t, or None when not in the scene."""
        wps = self.waypoints
        if t < wps[0].t or t > wps[-1].t:
            return None
        for a, b in pairwise(wps):
            if a.t <= t <= b.t:
                if b.t == a.t or (a.x == b.x and a.y == b.y):
                    return a.x, a.y, self.stand_angle
                f = (t - a.t) / (b.t - a.t)
                heading = math.atan2(b.y - a.y, b.x - a.x)
                return a.x + f * (b.x - a.x), a.y + f * (b.y - a.y), heading
        return wps[-1].x, wps[-1].y, self.stand_angle


@dataclass(frozen=True, slots=True)
class Crossing:
    t: float
    direction: Literal["in", "out"]


@dataclass(slots=True)
class Scene:
    spec: SceneSpec
    people: list[Person] = field(default_factory=list)

    @property
    def line(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """The counting line (a, b) in fractions: `in` crosses from the left of a→b to its right."""
        return (0.0, LINE_Y), (1.0, LINE_Y)

    @property
    def zone(self) -> list[tuple[float, float]]:
        x0, y0, x1, y1 = ZONE
        return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]

    def crossings(self) -> list[Crossing]:
        """Every crossing of the line, in time order, that happened while the camera saw it."""
        line_y = LINE_Y * self.spec.height
        out: list[Crossing] = []
        for p in self.people:
            for a, b in pairwise(p.waypoints):
                if (a.y - line_y) * (b.y - line_y) < 0:
                    t = a.t + (line_y - a.y) / (b.y - a.y) * (b.t - a.t)
                    out.append(Crossing(t, "in" if b.y > a.y else "out"))
        out.sort(key=lambda c: c.t)
        return [c for c in out if c.t < self.spec.duration_s and self.visible(c.t)]

    def occupancy(self, t: float) -> int:
        x0, y0, x1, y1 = ZONE
        w, h = self.spec.width, self.spec.height
        n = 0
        for p in self.people:
            pos = p.position(t)
            if pos and x0 * w <= pos[0] <= x1 * w and y0 * h <= pos[1] <= y1 * h:
                n += 1
        return n

    def tamper_at(self, t: float) -> TamperSpec | None:
        for tp in self.spec.tampers:
            if tp.start_s <= t < tp.end_s:
                return tp
        return None

    def in_outage(self, t: float) -> bool:
        return any(a <= t < b for a, b in self.spec.outages)

    def visible(self, t: float) -> bool:
        """Whether the camera shows the scene as it is (no tamper, no outage) at t."""
        return self.tamper_at(t) is None and not self.in_outage(t)

    def lighting_gain(self, t: float) -> float:
        kind = self.spec.lighting
        if kind == "drift":
            return 0.9 + 0.25 * math.sin(2 * math.pi * t / max(self.spec.duration_s, 1.0))
        if kind == "switch":
            # Lights switched off and on again every 20 s: a 35 % step within 0.3 s.
            phase = t % 40.0
            if phase < 20.0:
                return 1.0
            return 1.0 - 0.35 * min(1.0, (phase - 20.0) / 0.3) if phase < 39.7 else 1.0
        return 1.0

    def ground_truth(self) -> dict[str, object]:
        cs = self.crossings()
        step = 1.0 / self.spec.fps
        n = int(self.spec.duration_s * self.spec.fps)
        return {
            "seed": self.spec.seed,
            "crossings": {
                "in": sum(1 for c in cs if c.direction == "in"),
                "out": sum(1 for c in cs if c.direction == "out"),
                "events": [{"t": round(c.t, 3), "direction": c.direction} for c in cs],
            },
            "occupancy_max": max((self.occupancy(i * step) for i in range(n)), default=0),
            "tampers": [
                {"kind": tp.kind, "start_s": tp.start_s, "end_s": tp.end_s}
                for tp in self.spec.tampers
            ],
            "outages": [list(o) for o in self.spec.outages],
        }


_CLOTHES = [
    (40, 40, 160),
    (160, 50, 40),
    (40, 120, 40),
    (30, 30, 30),
    (200, 200, 60),
    (120, 40, 120),
    (60, 60, 200),
    (20, 90, 160),
    (90, 60, 40),
    (150, 160, 165),  # grey, close to the floor: only partly seen
    (200, 205, 210),
]


def _person(rng: random.Random, waypoints: list[Waypoint]) -> Person:
    return Person(
        waypoints,
        colour=rng.choice(_CLOTHES),
        hair=rng.randint(10, 45),
        stand_angle=rng.uniform(-math.pi, math.pi),
    )


def _formation(kind: str, rng: random.Random, body: float) -> list[tuple[float, float]]:
    """Offsets (across, along) of each member relative to the unit's leader, in pixels."""

    def gap() -> float:
        return rng.uniform(0.12, 0.3) * body

    if kind == "alone":
        return [(0.0, 0.0)]
    if kind == "pair":
        if rng.random() < 0.7:  # side by side, shoulders almost touching
            return [(0.0, 0.0), (body + gap(), rng.uniform(-0.2, 0.2) * body)]
        return [(0.0, 0.0), (rng.uniform(-0.2, 0.2) * body, -(0.75 * body + gap()))]
    size = rng.randint(3, 5)
    out = []
    for i in range(size):
        row, col = divmod(i, 2 if size == 4 else 3)
        out.append((col * (body + gap()), -row * (0.8 * body + gap())))
    return out


def _crossers(spec: SceneSpec, rng: random.Random, people: list[Person]) -> None:
    w, h = spec.width, spec.height
    body = BODY_W * w
    speed_scale = w / 640 * PX_PER_M_AT_640
    free_at = {"in": (spec.warmup_s, 0.0, 0.0), "out": (spec.warmup_s, 0.0, 0.0)}
    mean_gap = 60.0 / spec.density if spec.density > 0 else math.inf
    t = spec.warmup_s
    while True:
        kind = rng.choices(["alone", "pair", "group"], weights=[0.55, 0.3, 0.15])[0]
        members = _formation(kind, rng, body)
        t += rng.expovariate(1.0) * mean_gap * len(members)
        if t >= spec.duration_s:
            return
        direction = "in" if rng.random() < 0.5 else "out"
        v = rng.uniform(1.0, 1.6) * speed_scale
        depth = max(-m[1] for m in members) + body * 1.5
        travel = (h + 2 * body + depth) / v
        # Units in one direction follow each other: the next may start close behind (people
        # do tailgate), but never so close, or so much faster, that it walks into the last.
        prev_start, prev_v, prev_depth = free_at[direction]
        length = h + 2 * body
        catch_up = max(0.0, length / prev_v - length / v) if prev_v else 0.0
        gap = (prev_depth + rng.uniform(0.3, 1.5) * body) / v
        start = max(t, prev_start + gap + catch_up)
        if start + (h / 2 + body + depth) / v > spec.duration_s - 2.0:
            continue  # the clip ends with nobody half-way across the line
        free_at[direction] = (start, v, depth - body * 1.5 + body * 0.6)
        span = max(m[0] for m in members) + body
        half_lo, half_hi = LANE_X[0] * w, LANE_X[1] * w
        # `in` keeps to the left part of the lane, `out` to the right; the parts overlap by a
        # body width, so people walking in opposite directions pass shoulder to shoulder.
        mid = (half_lo + half_hi) / 2
        lo, hi = (half_lo + body / 2, mid + body / 2 - span + body / 2)
        if direction == "out":
            lo, hi = (mid - body / 2 + body / 2, half_hi - span + body / 2)
        x0 = rng.uniform(lo, max(lo, hi))
        drift = rng.uniform(-0.6, 0.6) * body  # paths are not quite straight
        for across, along in members:
            x = x0 + across
            if direction == "in":
                ya, yb = -body + along, -body + along + v * travel
            else:
                ya, yb = h + body - along, h + body - along - v * travel
            people.append(
                _person(rng, [Waypoint(start, x, ya), Waypoint(start + travel, x + drift, yb)])
            )


def _gatherings(spec: SceneSpec, rng: random.Random, people: list[Person]) -> None:
    if not spec.gatherings:
        return
    w, h = spec.width, spec.height
    x0, y0, x1, y1 = ZONE[0] * w, ZONE[1] * h, ZONE[2] * w, ZONE[3] * h
    cols, rows = ZONE_GRID
    cw, rh = (x1 - x0) / cols, (y1 - y0) / rows
    speed = 1.2 * w / 640 * PX_PER_M_AT_640
    body = BODY_W * w
    slot = (spec.duration_s - spec.warmup_s) / len(spec.gatherings)
    for k, wanted in enumerate(spec.gatherings):
        size = min(wanted, cols * rows)
        t0 = spec.warmup_s + k * slot + 1.0
        arrive_span, leave_span = slot * 0.25, slot * 0.2
        stand_until = t0 + slot * 0.75
        # Fill each row from the far end (LIFO), so nobody walks through a standing person.
        per_row = [0] * rows
        for i in range(size):
            per_row[i % rows] += 1
        for r in range(rows):
            y = y0 + (r + 0.5) * rh + rng.uniform(-3, 3)
            n = per_row[r]
            arrive = sorted(rng.uniform(0, arrive_span) for _ in range(n))
            for i in range(n):
                arrive[i] = max(arrive[i], arrive[i - 1] + (body + 8) / speed if i else 0.0)
            leave = sorted((rng.uniform(0, leave_span) for _ in range(n)), reverse=True)
            for i in range(n):
                sx = x0 + (i + 0.5) * cw + rng.uniform(-3, 3)
                start_x = w + body
                ta = t0 + arrive[i]
                tb = ta + (start_x - sx) / speed
                tc = max(stand_until + leave[i], tb + 2.0)
                td = tc + (start_x - sx) / speed
                people.append(
                    _person(
                        rng,
                        [
                            Waypoint(ta, start_x, y),
                            Waypoint(tb, sx, y),
                            Waypoint(tc, sx, y),
                            Waypoint(td, start_x, y),
                        ],
                    )
                )
            # Later arrivals in a row stand nearer the entrance and leave first (see above).
            for i in range(1, n):
                prev, cur = people[-n + i - 1], people[-n + i]
                if cur.waypoints[2].t > prev.waypoints[2].t:
                    tc = max(cur.waypoints[1].t, prev.waypoints[2].t - 0.8)
                    cur.waypoints[2] = Waypoint(tc, cur.waypoints[2].x, cur.waypoints[2].y)
                    cur.waypoints[3] = Waypoint(
                        cur.waypoints[2].t + (start_x - cur.waypoints[2].x) / speed,
                        start_x,
                        cur.waypoints[3].y,
                    )


def build_scene(spec: SceneSpec) -> Scene:
    rng = random.Random(spec.seed)
    people: list[Person] = []
    _crossers(spec, rng, people)
    _gatherings(spec, rng, people)
    return Scene(spec, people)
