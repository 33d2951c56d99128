"""Renders a `Scene` into BGR frames (numpy + OpenCV drawing): background, people, lighting,
tampering and sensor noise. Frame i shows the scene at t = i / fps; the same seed renders the
same pixels."""

from __future__ import annotations

import math
from collections.abc import Iterator

import cv2
import numpy as np
from cv2.typing import MatLike

from simulators.camera.scene import BODY_W, LANE_X, LINE_Y, Scene

Frame = MatLike


def _background(scene: Scene) -> Frame:
    spec = scene.spec
    w, h = spec.width, spec.height
    rng = np.random.default_rng(spec.seed)
    base = rng.uniform(165, 200)
    tint = rng.uniform(-12, 12, size=3)
    img = np.empty((h, w, 3), np.float32)
    img[:] = base + tint
    tile = max(8, int(w / 10))
    off = int(rng.integers(0, tile))
    for x in range(off, w, tile):
        cv2.line(img, (x, 0), (x, h), (base - 45,) * 3, max(1, w // 320))
    for y in range(off, h, tile):
        cv2.line(img, (0, y), (w, y), (base - 45,) * 3, max(1, w // 320))
    for _ in range(8):  # mats, drains, furniture along the walls
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        rw, rh = int(rng.integers(w // 30, w // 8)), int(rng.integers(h // 30, h // 8))
        colour = tuple(float(c) for c in rng.uniform(60, 230, size=3))
        cv2.rectangle(img, (x0, y0), (x0 + rw, y0 + rh), colour, -1)
    # Walls with door frames at the top and bottom, and painted lane edges.
    cv2.rectangle(img, (0, 0), (w, max(2, h // 60)), (90, 90, 100), -1)
    cv2.rectangle(img, (0, h - max(2, h // 60)), (w, h), (90, 90, 100), -1)
    for fx in LANE_X:
        cv2.line(img, (int(fx * w), 0), (int(fx * w), h), (230, 230, 240), max(1, w // 200))
    y = int(LINE_Y * h)
    for x in range(0, w, max(4, w // 40)):
        cv2.line(img, (x, y), (x + max(2, w // 80), y), (60, 160, 220), max(1, w // 320))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    vignette = 1.0 - 0.18 * (((xx - w / 2) / w) ** 2 + ((yy - h / 2) / h) ** 2) * 4
    img *= vignette[..., None]
    return np.clip(img, 0, 255).astype(np.uint8)


class Renderer:
    """Renders frames of one scene. Cheap per frame: the background and a bank of noise
    fields are made once, frames draw people onto a copy."""

    def __init__(self, scene: Scene) -> None:
        self.scene = scene
        spec = scene.spec
        self._bg = _background(scene)
        rng = np.random.default_rng(spec.seed + 1)
        self._noise: list[tuple[Frame, Frame]] = []
        for _ in range(8):
            field = rng.normal(0.0, spec.noise_sigma, size=(spec.height, spec.width))
            grey = np.rint(field).astype(np.int16)
            up = cv2.cvtColor(np.clip(grey, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)
            down = cv2.cvtColor(np.clip(-grey, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)
            self._noise.append((up, down))
        angle = float(rng.uniform(0, 2 * math.pi))
        reach = BODY_W * spec.width * 0.25
        self._shadow = (reach * math.cos(angle), reach * math.sin(angle))

    @property
    def frame_count(self) -> int:
        return int(self.scene.spec.duration_s * self.scene.spec.fps)

    def clean(self, t: float) -> Frame:
        """The scene at t as the lens sees it, before lighting, tampering and noise."""
        img = self._bg.copy()
        spec = self.scene.spec
        body = BODY_W * spec.width
        # Shadows are soft: drawn at a quarter of the size, blurred there, scaled up.
        q = 4
        shadow: MatLike = np.zeros((spec.height // q, spec.width // q), np.float32)
        people: list[tuple[tuple[int, int], tuple[int, int], float, tuple[int, int, int], int]] = []
        for p in self.scene.people:
            pos = p.position(t)
            if pos is None:
                continue
            x, y, heading = pos
            centre = (round(x), round(y))
            angle = math.degrees(heading) + 90.0
            axes = (round(body / 2), round(body * 0.3))
            # A soft shadow from the ceiling lights, offset to one side.
            shade = (round((x + self._shadow[0]) / q), round((y + self._shadow[1]) / q))
            small_axes = (max(1, round(axes[0] / q)), max(1, round(axes[1] / q)))
            cv2.ellipse(shadow, shade, small_axes, angle, 0, 360, 1.0, -1, cv2.LINE_AA)
            people.append((centre, axes, angle, p.colour, p.hair))
        if people:
            shadow = cv2.GaussianBlur(shadow, (0, 0), max(0.5, body * 0.15 / q))
            shadow = cv2.resize(shadow, (spec.width, spec.height), interpolation=cv2.INTER_LINEAR)
            factor = cv2.cvtColor(1.0 - 0.22 * shadow, cv2.COLOR_GRAY2BGR)
            img = cv2.multiply(img, factor, dtype=cv2.CV_8U)
        for centre, axes, angle, colour, hair in people:
            cv2.ellipse(img, centre, axes, angle, 0, 360, colour, -1, cv2.LINE_AA)
            cv2.circle(img, centre, round(body * 0.2), (hair,) * 3, -1, cv2.LINE_AA)
        return img

    def frame(self, i: int) -> Frame:
        spec = self.scene.spec
        t = i / spec.fps
        img = self.clean(t)
        gain = self.scene.lighting_gain(t)
        if gain != 1.0:
            img = cv2.convertScaleAbs(img, alpha=gain)
        tp = self.scene.tamper_at(t)
        if tp is not None:
            img = self._tamper(img, tp.kind, t - tp.start_s)
        # The noise field depends on the frame index only, so any frame renders the same
        # whatever was rendered before (the MJPEG server jumps to the current frame).
        up, down = self._noise[((i * 2654435761 + spec.seed) >> 7) % len(self._noise)]
        return cv2.subtract(cv2.add(img, up), down)

    def _tamper(self, img: Frame, kind: str, since: float) -> Frame:
        h, w = img.shape[:2]
        if kind == "blur":
            return cv2.GaussianBlur(img, (0, 0), 0.012 * w)
        if kind == "shift":
            m = cv2.getRotationMatrix2D((w / 2, h / 2), 4.0, 1.0)
            m[0, 2] += 0.15 * w
            m[1, 2] += 0.08 * h
            return cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REFLECT)
        # A hand or a cloth over the lens: dark, nearly uniform, a faint smooth gradient.
        yy = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
        return np.broadcast_to(18.0 + 10.0 * yy, img.shape).astype(np.uint8)

    def frames(self) -> Iterator[tuple[int, Frame]]:
        for i in range(self.frame_count):
            yield i, self.frame(i)


def annotate_truth(frame: Frame, scene: Scene) -> Frame:
    """Draws the line and the zone onto a frame (for looking at clips by eye)."""
    w, h = scene.spec.width, scene.spec.height
    out = frame.copy()
    (ax, ay), (bx, by) = scene.line
    cv2.line(out, (int(ax * w), int(ay * h)), (int(bx * w), int(by * h)), (0, 255, 255), 1)
    pts = np.array([[int(x * w), int(y * h)] for x, y in scene.zone], np.int32)
    cv2.polylines(out, [pts], True, (0, 200, 0), 1)
    return out
