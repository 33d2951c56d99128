"""One camera's analysis: frames in, reports out (line crossings, occupancy, motion, tamper).

Decides what to report and when; the pixel work is in `vision.py`. Frame timestamps drive
every timer, so a clip analysed from a file gives the same reports on every run.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from collectors.camera import vision
from collectors.camera.geometry import Segment, scale
from collectors.camera.messages import CamEvent, CamReading, Report
from collectors.camera.tracking import Debounce, LineCounter, Smoother, Tracker
from gateway.config.cameras import CameraConfig

TAMPER_KINDS = ("covered", "defocused", "moved")


@dataclass(slots=True)
class _ZoneState:
    name: str
    polygon: list[tuple[float, float]]
    mask: vision.Image
    threshold: int | None
    smoother: Smoother
    crowd: Debounce
    last_value: int | None = None
    last_report_s: float = -1e9


@dataclass(slots=True)
class _RegionState:
    name: str
    mask: vision.Image
    area: int
    threshold: float
    active: Debounce
    peak: float = 0.0
    last_report_s: float = -1e9


@dataclass(slots=True)
class _Baseline:
    contrast: list[float] = field(default_factory=list)
    sharpness: list[float] = field(default_factory=list)

    def ready(self) -> tuple[float, float]:
        return statistics.median(self.contrast), statistics.median(self.sharpness)


class Pipeline:
    def __init__(
        self, cam: CameraConfig, snapshot_width: int = 640, snapshot_quality: int = 80
    ) -> None:
        self.cam = cam
        self.snapshot_width = snapshot_width
        self.snapshot_quality = snapshot_quality
        self._vision: vision.Vision | None = None
        self._start_s: float | None = None
        self._baseline = _Baseline()
        self._base: tuple[float, float] | None = None
        tc = cam.tamper
        self.tamper = {k: Debounce(tc.persist_s, tc.clear_s) for k in TAMPER_KINDS}
        self.blind = False
        self.people: list[tuple[float, float, float]] = []
        self.last_metrics: vision.TamperMetrics | None = None
        self._n = 0

    # -- set-up on the first frame -----------------------------------------------------------
    def _setup(self, width: int, height: int) -> vision.Vision:
        cam = self.cam
        size = vision.working_size(width, height, cam.width)
        self.size = size
        w, h = size
        masks = [scale(m, w, h) for m in cam.masks]
        exclude = vision.polygon_mask(masks, size) if masks else None
        v = vision.Vision(size, cam.person_width * w, cam.threshold, exclude)
        self.tracker = Tracker(gate=cam.person_width * w * 0.9, max_missed=3)
        self.lines = [
            LineCounter(
                ln.name,
                Segment(ln.a[0] * w, ln.a[1] * h, ln.b[0] * w, ln.b[1] * h),
                margin=max(1.0, cam.person_width * w * 0.12),
            )
            for ln in cam.lines
        ]
        smooth_n = max(1, round(cam.fps * 0.5))
        self.zones = [
            _ZoneState(
                z.name,
                scale(z.polygon, w, h),
                vision.polygon_mask([scale(z.polygon, w, h)], size),
                z.crowd_threshold,
                Smoother(smooth_n),
                Debounce(1.0, 5.0),
            )
            for z in cam.zones
        ]
        self.regions = []
        for r in cam.regions:
            m = vision.polygon_mask([scale(r.polygon, w, h)], size)
            area = int((m > 0).sum())
            self.regions.append(_RegionState(r.name, m, area, r.threshold, Debounce(0.5, 2.0)))
        return v

    # -- per frame ---------------------------------------------------------------------------
    def process(self, frame: vision.Image, ts_ms: int) -> Report:
        t = ts_ms / 1000.0
        if self._vision is None:
            self._vision = self._setup(frame.shape[1], frame.shape[0])
            self._start_s = t
        v = self._vision
        assert self._start_s is not None
        small = v.prepare(frame)
        thumb = v.thumbnail(small)
        report = Report()
        if self._base is None:
            alpha = 0.2
            v.learn(small, alpha)
            v.learn_reference(thumb, alpha)
            m = v.tamper_metrics(thumb)
            self._baseline.contrast.append(m.contrast)
            self._baseline.sharpness.append(m.sharpness)
            if t - self._start_s >= self.cam.learn_s:
                self._base = self._baseline.ready()
            return report

        m = v.tamper_metrics(thumb)
        self.last_metrics = m
        raw = self._tamper_raw(m)
        for kind in TAMPER_KINDS:
            change = self.tamper[kind].update(raw[kind], t)
            if change is not None:
                self._tamper_event(report, frame, ts_ms, kind=kind, on=change, m=m)
        self.blind = any(raw.values()) or any(d.state for d in self.tamper.values())
        # The foreground is needed even when blind: the moved check ignores where people are.
        fg = v.foreground(small, thumb)
        if self.blind:
            self.tracker.reset()
            self.people = []
            return report

        self.people = v.people(fg)
        tracks = self.tracker.update([(x, y) for x, y, _ in self.people])
        for lc in self.lines:
            crossed = lc.update(tracks)
            for direction in ("in", "out"):
                n = crossed.count(direction)
                if n:
                    self._crossing_event(report, frame, ts_ms, lc=lc, direction=direction, n=n)
        self._zones(report, frame, ts_ms, t)
        self._regions(report, fg, ts_ms, t)
        self._n += 1
        v.update_background(small, 0.03, 1.0 / (self.cam.fps * 300.0), self._n)
        return report

    def _tamper_raw(self, m: vision.TamperMetrics) -> dict[str, bool]:
        assert self._base is not None
        base_contrast, base_sharp = self._base
        tc = self.cam.tamper
        covered = m.contrast < base_contrast * tc.covered_contrast
        defocused = not covered and m.sharpness < base_sharp * tc.defocus_ratio
        moved = (
            not covered
            and not defocused
            and (
                m.match < tc.moved_match
                or (m.match < 0.9 and m.shift > tc.moved_shift * vision.THUMB[0])
            )
        )
        return {"covered": covered, "defocused": defocused, "moved": moved}

    def _zones(self, report: Report, frame: vision.Image, ts_ms: int, t: float) -> None:
        for z in self.zones:
            lookup = z.mask
            raw = sum(1 for x, y, _ in self.people if lookup[int(y), int(x)])
            value = z.smoother.push(raw)
            if value != z.last_value or t - z.last_report_s >= self.cam.report_interval_s:
                report.readings.append(CamReading(f"occupancy.{z.name}", ts_ms, float(value)))
                z.last_value = value
                z.last_report_s = t
            if z.threshold is None:
                continue
            change = z.crowd.update(value >= z.threshold, t)
            if change is not None:
                data = {
                    "zone": z.name,
                    "count": value,
                    "threshold": z.threshold,
                    "state": "on" if change else "off",
                }
                shot = self._snapshot(frame, f"{z.name}: {value} people") if change else None
                report.events.append(CamEvent("camera.crowding", ts_ms, data, shot))

    def _regions(self, report: Report, fg: vision.Image, ts_ms: int, t: float) -> None:
        for r in self.regions:
            frac = vision.Vision.fraction(fg, r.mask, r.area)
            r.peak = max(r.peak, frac)
            change = r.active.update(frac >= r.threshold, t)
            if change is not None:
                state = "on" if change else "off"
                data = {"region": r.name, "state": state, "fraction": round(frac, 4)}
                report.events.append(CamEvent("camera.motion", ts_ms, data))
            if t - r.last_report_s >= self.cam.report_interval_s:
                report.readings.append(CamReading(f"motion.{r.name}", ts_ms, round(r.peak, 4)))
                r.peak = 0.0
                r.last_report_s = t

    def _crossing_event(
        self,
        report: Report,
        frame: vision.Image,
        ts_ms: int,
        *,
        lc: LineCounter,
        direction: str,
        n: int,
    ) -> None:
        data = {
            "line": lc.name,
            "direction": direction,
            "count": n,
            "total": lc.counts[direction],  # type: ignore[index]
        }
        snap = next((ln.snapshot for ln in self.cam.lines if ln.name == lc.name), False)
        shot = self._snapshot(frame, f"{lc.name} {direction} x{n}") if snap else None
        report.events.append(CamEvent("camera.line_crossing", ts_ms, data, shot))

    def _tamper_event(
        self,
        report: Report,
        frame: vision.Image,
        ts_ms: int,
        *,
        kind: str,
        on: bool,
        m: vision.TamperMetrics,
    ) -> None:
        data = {
            "type": kind,
            "state": "on" if on else "off",
            "contrast": round(m.contrast, 2),
            "sharpness": round(m.sharpness, 4),
            "shift": round(m.shift, 2),
            "match": round(m.match, 3),
        }
        shot = self._snapshot(frame, f"tamper: {kind}") if on else None
        report.events.append(CamEvent("camera.tamper", ts_ms, data, shot))
        any_on = any(d.state for d in self.tamper.values())
        report.readings.append(CamReading("tamper", ts_ms, 1.0 if any_on else 0.0))

    # -- snapshots ---------------------------------------------------------------------------
    def _snapshot(self, frame: vision.Image, caption: str) -> bytes:
        h, w = frame.shape[:2]
        sw = min(w, self.snapshot_width)
        small = frame if sw == w else vision.Vision.resize(frame, (sw, round(h * sw / w)))
        sh = small.shape[0]
        fx, fy = sw / self.size[0], sh / self.size[1]
        lines = [
            (ln.name, (ln.a[0] * sw, ln.a[1] * sh), (ln.b[0] * sw, ln.b[1] * sh))
            for ln in self.cam.lines
        ]
        zones = [(z.name, scale(z.polygon, sw, sh)) for z in self.cam.zones]
        people = [(x * fx, y * fy) for x, y, _ in self.people]
        img = vision.annotate(small, lines, zones, people, caption)
        return vision.encode_jpeg(img, self.snapshot_quality)
