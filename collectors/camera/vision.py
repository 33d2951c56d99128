"""The image processing of the camera analysis (OpenCV + numpy).

cv2 is imported by two modules only: `capture.py` (decoding sources) and this one (pixel
work). Everything that is not pixel work (tracking, counting, debouncing, what to report)
is pure Python in `tracking.py` and `pipeline.py`, so it is testable without images and this
module stays the one place where OpenCV's behaviour (and version: 4.x, see pyproject) matters.

Methods, chosen by measured accuracy and cost (bench/camera_accuracy.py, bench/camera_fps.py):
- people: a colour background model with a global gain estimate (lighting changes), a
  foreground mask, and one detection per peak of its distance transform. From above, people
  are compact blobs; the peaks separate people walking or standing shoulder to shoulder,
  where connected components alone merge them. At 320×240 this costs well under a
  millisecond; HOG (24 ms/frame at 640×480) does not fit the budget and cannot see people
  from above anyway.
- tamper: on a 80×60 thumbnail: contrast (covered), Laplacian energy normalised by contrast
  (defocus, insensitive to lighting), and phase correlation against the learned reference
  (moved: a translation, or no match at all).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from cv2.typing import MatLike

Image = MatLike
FloatImage = MatLike
Polygon = Sequence[tuple[float, float]]

THUMB = (80, 60)


def limit_threads() -> None:
    """One thread per camera process: cameras scale by processes, not by OpenCV's pool."""
    cv2.setNumThreads(1)


def working_size(width: int, height: int, target_width: int) -> tuple[int, int]:
    w = min(target_width, width)
    return w, max(1, round(height * w / width))


def polygon_mask(polygons: Sequence[Polygon], size: tuple[int, int]) -> Image:
    """A 0/255 mask of the given pixel polygons on an image of `size` (w, h)."""
    mask = np.zeros((size[1], size[0]), np.uint8)
    for poly in polygons:
        pts = np.array([[round(x), round(y)] for x, y in poly], np.int32)
        cv2.fillPoly(mask, [pts], 255)
    return mask


@dataclass(frozen=True, slots=True)
class TamperMetrics:
    contrast: float
    sharpness: float
    shift: float
    match: float


class Vision:
    """Per-camera image state: the background model and the tamper reference."""

    def __init__(
        self,
        size: tuple[int, int],
        person_width_px: float,
        threshold: float = 28.0,
        exclude: Image | None = None,
    ) -> None:
        self.size = size
        self.person_width = person_width_px
        self.threshold = threshold
        self.bg: FloatImage | None = None
        self.fg: Image = np.zeros((size[1], size[0]), np.uint8)
        self._keep: Image | None = None if exclude is None else cv2.bitwise_not(exclude)
        self.gain = 1.0
        self._open = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
        self._close = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
        self.min_peak = max(1.5, person_width_px * 0.14)
        self.min_separation = person_width_px * 0.6
        k = max(3, round(self.min_separation)) | 1
        self._peak_kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (k, k))
        self._window = cv2.createHanningWindow(THUMB, cv2.CV_32F)
        self.reference: FloatImage | None = None
        self._ref_blur: FloatImage | None = None
        self._still: Image | None = None
        self._grow = cv2.getStructuringElement(cv2.MORPH_RECT, (3, 3))
        self._bg_thumb: FloatImage | None = None
        self._n = 0
        # A ramp far below one distance step, so flat ridges have one maximum, not many.
        ramp = np.arange(size[0] * size[1], dtype=np.float32).reshape(size[1], size[0])
        self._tiebreak = ramp * np.float32(1e-3 / (size[0] * size[1]))

    # -- input -----------------------------------------------------------------------------
    def prepare(self, frame: Image) -> Image:
        """The frame at the working size (BGR, uint8)."""
        h, w = frame.shape[:2]
        if (w, h) != self.size:
            frame = cv2.resize(frame, self.size, interpolation=cv2.INTER_AREA)
        if frame.ndim == 2:
            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        return frame

    def thumbnail(self, small: Image) -> FloatImage:
        grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        return cv2.resize(grey, THUMB, interpolation=cv2.INTER_AREA).astype(np.float32)

    # -- background and people ---------------------------------------------------------------
    def learn(self, small: Image, alpha: float) -> None:
        if self.bg is None:
            self.bg = small.astype(np.float32)
        else:
            cv2.accumulateWeighted(small, self.bg, alpha)

    def foreground(self, small: Image, thumb: FloatImage) -> Image:
        """The mask of what differs from the background, after compensating global lighting.

        The lighting gain is the ratio of the thumbnail to the background's thumbnail where
        nothing was in the foreground in the previous frame."""
        assert self.bg is not None
        self._n += 1
        if self._bg_thumb is None or self._n % 10 == 0:
            small_bg = cv2.resize(self.bg, THUMB, interpolation=cv2.INTER_AREA)
            self._bg_thumb = cv2.cvtColor(small_bg, cv2.COLOR_BGR2GRAY)
        seen = cv2.resize(self.fg, THUMB, interpolation=cv2.INTER_AREA)
        seen = cv2.dilate(seen, self._grow)
        _, still = cv2.threshold(seen, 0, 255, cv2.THRESH_BINARY_INV)
        self._still = still
        num = cv2.mean(thumb, mask=still)[0]
        den = cv2.mean(self._bg_thumb, mask=still)[0]
        self.gain = num / den if den > 1.0 and num > 1.0 else 1.0
        diff = cv2.absdiff(small, cv2.convertScaleAbs(self.bg, alpha=self.gain))
        level = self.threshold * max(self.gain, 0.3)
        # Any channel over the threshold: threshold each, then any non-zero in their grey sum.
        _, over = cv2.threshold(diff, level, 255, cv2.THRESH_BINARY)
        _, mask = cv2.threshold(cv2.cvtColor(over, cv2.COLOR_BGR2GRAY), 0, 255, cv2.THRESH_BINARY)
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, self._open)
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, self._close)
        if self._keep is not None:
            mask = cv2.bitwise_and(mask, self._keep)
        self.fg = mask
        return mask

    def update_background(self, small: Image, alpha: float, alpha_fg: float, n: int) -> None:
        """Background follows the scene where nobody is; under people only very slowly, so a
        group standing for minutes stays visible but a bag left for an hour is absorbed
        (applied every 10th frame, at ten times the rate, to save time)."""
        assert self.bg is not None
        norm = (
            small
            if abs(self.gain - 1.0) < 0.01
            else cv2.convertScaleAbs(small, alpha=1 / self.gain)
        )
        cv2.accumulateWeighted(norm, self.bg, alpha, mask=cv2.bitwise_not(self.fg))
        if alpha_fg > 0 and n % 10 == 0:
            cv2.accumulateWeighted(norm, self.bg, min(1.0, alpha_fg * 10), mask=self.fg)

    def people(self, mask: Image) -> list[tuple[float, float, float]]:
        """(x, y, strength) per person: peaks of the distance transform, merged when closer
        than a person allows."""
        dist = cv2.add(cv2.distanceTransform(mask, cv2.DIST_L2, 3), self._tiebreak)
        peaks = cv2.compare(dist, cv2.dilate(dist, self._peak_kernel), cv2.CMP_GE)
        _, strong = cv2.threshold(dist, self.min_peak, 255, cv2.THRESH_BINARY)
        peaks = cv2.bitwise_and(peaks, strong.astype(np.uint8))
        pts = cv2.findNonZero(peaks)
        if pts is None:
            return []
        pts = pts.reshape(-1, 2)
        values = dist[pts[:, 1], pts[:, 0]]
        order = np.argsort(-values, kind="stable")
        pts, values = pts[order].astype(np.float64), values[order]
        d2 = ((pts[:, None, :] - pts[None, :, :]) ** 2).sum(axis=2)
        close = d2 < self.min_separation**2
        np.fill_diagonal(close, False)
        keep = np.ones(len(pts), bool)
        for i in np.flatnonzero(close.any(axis=1)).tolist():
            if keep[i]:
                later = close[i].copy()
                later[: i + 1] = False
                keep &= ~later
        return [
            (float(x), float(y), float(val))
            for (x, y), val in zip(pts[keep].tolist(), values[keep].tolist(), strict=True)
        ]

    @staticmethod
    def resize(frame: Image, size: tuple[int, int]) -> Image:
        return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)

    @staticmethod
    def fraction(mask: Image, region: Image, area: int) -> float:
        return cv2.countNonZero(cv2.bitwise_and(mask, region)) / max(1, area)

    # -- tamper ------------------------------------------------------------------------------
    def tamper_metrics(self, thumb: FloatImage) -> TamperMetrics:
        _, std = cv2.meanStdDev(thumb)
        contrast = float(std[0][0])
        lap = cv2.Laplacian(thumb, cv2.CV_32F, ksize=1)
        sharpness = float(np.abs(lap).mean()) / (contrast + 1.0)
        shift, match = 0.0, 1.0
        if self.reference is not None:
            cur = cv2.GaussianBlur(thumb, (5, 5), 1.0)
            if self._ref_blur is None:
                self._ref_blur = cv2.GaussianBlur(self.reference, (5, 5), 1.0)
            match = self._correlation(cur, self._ref_blur, self._still)
            if match < 0.9:  # how far it moved, for the report (rarely needed: it costs)
                # phaseCorrelate applies the window to its inputs in place: give it copies.
                ref = self._ref_blur.copy()
                (dx, dy), _ = cv2.phaseCorrelate(ref, cur.copy(), self._window)
                shift = (dx * dx + dy * dy) ** 0.5
        return TamperMetrics(contrast, sharpness, shift, match)

    @staticmethod
    def _correlation(a: FloatImage, b: FloatImage, mask: Image | None) -> float:
        """Normalised correlation of a and b over the mask (where nobody was seen): people
        in view do not lower it, a camera turned away does."""
        if mask is not None and cv2.countNonZero(mask) < mask.size // 4:
            mask = None
        ma, sa = cv2.meanStdDev(a, mask=mask)
        mb, sb = cv2.meanStdDev(b, mask=mask)
        cov = cv2.mean(cv2.multiply(a - float(ma[0][0]), b - float(mb[0][0])), mask=mask)[0]
        return float(cov / max(float(sa[0][0]) * float(sb[0][0]), 1e-6))

    def learn_reference(self, thumb: FloatImage, alpha: float) -> None:
        self._ref_blur = None
        if self.reference is None:
            self.reference = thumb.copy()
        else:
            cv2.accumulateWeighted(thumb, self.reference, alpha)


# -- snapshots ---------------------------------------------------------------------------------
def annotate(
    frame: Image,
    lines: Sequence[tuple[str, tuple[float, float], tuple[float, float]]],
    zones: Sequence[tuple[str, Polygon]],
    people: Sequence[tuple[float, float]],
    caption: str,
) -> Image:
    """The frame with the lines, zones and detected people drawn; coordinates in its pixels."""
    out = frame.copy()
    if out.ndim == 2:
        out = cv2.cvtColor(out, cv2.COLOR_GRAY2BGR)
    for name, a, b in lines:
        pa, pb = (round(a[0]), round(a[1])), (round(b[0]), round(b[1]))
        cv2.line(out, pa, pb, (0, 255, 255), 2)
        cv2.putText(out, name, pa, cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 255, 255), 1)
    for name, poly in zones:
        pts = np.array([[round(x), round(y)] for x, y in poly], np.int32)
        cv2.polylines(out, [pts], True, (0, 220, 0), 2)
        cv2.putText(out, name, tuple(pts[0]), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 220, 0), 1)
    for x, y in people:
        cv2.circle(out, (round(x), round(y)), 4, (0, 0, 255), -1)
    cv2.putText(out, caption, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 2)
    cv2.putText(out, caption, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1)
    return out


def encode_jpeg(frame: Image, quality: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return bytes(buf.tobytes())
