"""Pure logic of the people analysis: tracking detections from frame to frame, counting line
crossings per direction, smoothing zone occupancy, and debouncing on/off conditions."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from collectors.camera.geometry import Segment

Direction = Literal["in", "out"]


@dataclass(slots=True)
class Track:
    id: int
    x: float
    y: float
    vx: float = 0.0
    vy: float = 0.0
    missed: int = 0
    hits: int = 1
    sides: dict[str, int] = field(default_factory=dict)


class Tracker:
    """Greedy nearest-neighbour tracking with constant-velocity prediction.

    Good enough for people seen from above at ≥ 5 analysed frames per second, where a person
    moves well under a body width between frames. `gate` is the largest distance (pixels)
    between a prediction and a detection that may be the same person.
    """

    def __init__(self, gate: float, max_missed: int = 3) -> None:
        self.gate = gate
        self.max_missed = max_missed
        self.tracks: list[Track] = []
        self._next = 1

    def update(self, detections: Sequence[tuple[float, float]]) -> list[Track]:
        pairs: list[tuple[float, int, int]] = []
        if self.tracks and detections:
            pred = np.array([(t.x + t.vx, t.y + t.vy) for t in self.tracks], np.float64)
            det = np.asarray(detections, np.float64)
            dist = np.hypot(pred[:, None, 0] - det[None, :, 0], pred[:, None, 1] - det[None, :, 1])
            ti_idx, di_idx = np.nonzero(dist <= self.gate)
            pairs = sorted(
                zip(dist[ti_idx, di_idx].tolist(), ti_idx.tolist(), di_idx.tolist(), strict=True)
            )
        used_t: set[int] = set()
        used_d: set[int] = set()
        for _, ti, di in pairs:
            if ti in used_t or di in used_d:
                continue
            used_t.add(ti)
            used_d.add(di)
            t = self.tracks[ti]
            nx, ny = detections[di]
            t.vx = 0.5 * t.vx + 0.5 * (nx - t.x)
            t.vy = 0.5 * t.vy + 0.5 * (ny - t.y)
            t.x, t.y = nx, ny
            t.missed = 0
            t.hits += 1
        kept: list[Track] = []
        for ti, t in enumerate(self.tracks):
            if ti not in used_t:
                t.missed += 1
                t.x += t.vx
                t.y += t.vy
                if t.missed > self.max_missed:
                    continue
            kept.append(t)
        for di, (dx, dy) in enumerate(detections):
            if di not in used_d:
                kept.append(Track(self._next, dx, dy))
                self._next += 1
        self.tracks = kept
        return [t for t in kept if t.missed == 0]

    def reset(self) -> None:
        self.tracks = []


@dataclass(slots=True)
class LineCounter:
    """Counts tracks crossing a segment. A track counts once per crossing, when it is seen at
    least `margin` pixels on the other side from where it was last seen at that margin; its
    own coasting predictions (missed frames) never count."""

    name: str
    segment: Segment
    margin: float
    counts: dict[Direction, int] = field(default_factory=lambda: {"in": 0, "out": 0})

    def update(self, tracks: Sequence[Track]) -> list[Direction]:
        crossed: list[Direction] = []
        for t in tracks:
            if t.missed:
                continue
            pos = self.segment.along(t.x, t.y)
            if pos < -0.02 or pos > 1.02:
                continue
            d = self.segment.side(t.x, t.y)
            if abs(d) < self.margin:
                continue
            side = 1 if d > 0 else -1
            before = t.sides.get(self.name)
            t.sides[self.name] = side
            if before is not None and before != side:
                direction: Direction = "in" if side > 0 else "out"
                self.counts[direction] += 1
                crossed.append(direction)
        return crossed


class Smoother:
    """The median of the last `n` values: occupancy without one-frame flicker."""

    def __init__(self, n: int) -> None:
        self._values: deque[int] = deque(maxlen=max(1, n))

    def push(self, value: int) -> int:
        self._values.append(value)
        ordered = sorted(self._values)
        return ordered[len(ordered) // 2]

    def clear(self) -> None:
        self._values.clear()


@dataclass(slots=True)
class Debounce:
    """A condition reported `on` only after it held for `on_s`, and `off` only after it was
    absent for `off_s`. `update` returns the new state on a transition, else None."""

    on_s: float
    off_s: float
    state: bool = False
    _since: float | None = None

    def update(self, raw: bool, t: float) -> bool | None:
        if raw == self.state:
            self._since = None
            return None
        if self._since is None:
            self._since = t
        if t - self._since >= (self.on_s if raw else self.off_s):
            self.state = raw
            self._since = None
            return raw
        return None
