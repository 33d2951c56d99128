"""Lines and polygons given as fractions of the frame, mapped to pixels of the working image."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

Point = tuple[float, float]


def scale(points: Sequence[Point], width: int, height: int) -> list[Point]:
    return [(x * width, y * height) for x, y in points]


@dataclass(frozen=True, slots=True)
class Segment:
    """A counting line from a to b in pixels. `in` is a crossing from the left of a→b to its
    right as seen in the image (y grows downwards), `out` the other way."""

    ax: float
    ay: float
    bx: float
    by: float

    def side(self, x: float, y: float) -> float:
        """Signed distance in pixels: positive on the right of a→b (the `in` side)."""
        dx, dy = self.bx - self.ax, self.by - self.ay
        length = (dx * dx + dy * dy) ** 0.5 or 1.0
        return (dx * (y - self.ay) - dy * (x - self.ax)) / length

    def along(self, x: float, y: float) -> float:
        """Where the point projects onto the segment: 0 at a, 1 at b."""
        dx, dy = self.bx - self.ax, self.by - self.ay
        denom = dx * dx + dy * dy or 1.0
        return ((x - self.ax) * dx + (y - self.ay) * dy) / denom
