"""Lines and polygons given as fractions of the frame, mapped to pixels of the working image."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

Point = tuple[float, float]


def scale(points: Sequence[Point], width: int, height: int) -> list[Point]:
    return [(x * width, y * height) for x, y in points]


def inside(polygon: Sequence[Point], x: float, y: float) -> bool:
    """Whether (x, y) lies inside the polygon (even-odd rule; edges count as inside)."""
    n = len(polygon)
    hit = False
    j = n - 1
    for i in range(n):
        xi, yi = polygon[i]
        xj, yj = polygon[j]
        if (yi > y) != (yj > y):
            cross_x = xi + (y - yi) * (xj - xi) / (yj - yi)
            if x <= cross_x:
                hit = not hit
        j = i
    if hit:
        return True
    x0 = min(p[0] for p in polygon)
    x1 = max(p[0] for p in polygon)
    y0 = min(p[1] for p in polygon)
    y1 = max(p[1] for p in polygon)
    # Axis-aligned rectangles are the common case: include their edges exactly.
    return n == 4 and x0 <= x <= x1 and y0 <= y <= y1 and _is_rect(polygon)


def _is_rect(polygon: Sequence[Point]) -> bool:
    xs = {round(p[0], 6) for p in polygon}
    ys = {round(p[1], 6) for p in polygon}
    return len(xs) == 2 and len(ys) == 2


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
