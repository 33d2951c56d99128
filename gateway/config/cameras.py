"""The `cameras:` section: video sources analysed on the box, and what to look for in each.

Geometry (lines, zones, regions, masks) is given in fractions of the frame, (0, 0) top left
and (1, 1) bottom right, so it survives a change of resolution.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field, field_validator, model_validator

from gateway.config.base import Section

if TYPE_CHECKING:
    from gateway.model import DeviceInfo

DEVICE_ID = r"^[a-z0-9-]{1,32}$"
NAME = r"^[a-z0-9_-]{1,32}$"
Point = tuple[float, float]


def _check_points(points: list[Point], least: int) -> list[Point]:
    if len(points) < least:
        raise ValueError(f"needs at least {least} points, got {len(points)}")
    for x, y in points:
        if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
            raise ValueError(f"point ({x}, {y}) is outside the frame: use fractions 0..1")
    return points


class LineConfig(Section):
    name: str = Field(pattern=NAME)
    """Line name, used in events (`data.line`)."""
    a: Point
    """Start of the counting line (fractions of the frame)."""
    b: Point
    """End of the counting line. `in` is a crossing from the left of a→b to its right as
    seen in the image, `out` the other way."""
    snapshot: bool = True
    """Keep a snapshot per crossing (for checking `gate.camera_mismatch` alerts)."""

    @model_validator(mode="after")
    def _points(self) -> LineConfig:
        _check_points([self.a, self.b], 2)
        if self.a == self.b:
            raise ValueError(f"line {self.name!r}: a and b are the same point")
        return self


class ZoneConfig(Section):
    name: str = Field(pattern=NAME)
    """Zone name: the metric is `occupancy.<name>`."""
    polygon: list[Point]
    """Corners of the zone (fractions of the frame), at least 3."""
    crowd_threshold: int | None = Field(15, ge=1)
    """People at or above which the zone counts as crowded (event and snapshot); unset: never."""

    @field_validator("polygon")
    @classmethod
    def _poly(cls, v: list[Point]) -> list[Point]:
        return _check_points(v, 3)


class RegionConfig(Section):
    name: str = Field(pattern=NAME)
    """Region name: the metric is `motion.<name>` (share of the region in motion)."""
    polygon: list[Point]
    """Corners of the region (fractions of the frame), at least 3."""
    threshold: float = Field(0.02, gt=0, le=1)
    """Share of the region in motion above which `camera.motion` turns on."""

    @field_validator("polygon")
    @classmethod
    def _poly(cls, v: list[Point]) -> list[Point]:
        return _check_points(v, 3)


class TamperConfig(Section):
    persist_s: float = Field(3.0, ge=0)
    """A tamper condition is reported once it held this long."""
    clear_s: float = Field(3.0, ge=0)
    """... and cleared once it was absent this long."""
    covered_contrast: float = Field(0.3, gt=0, lt=1)
    """Covered: image contrast below this share of the learned baseline."""
    defocus_ratio: float = Field(0.6, gt=0, lt=1)
    """Defocused: sharpness (normalised by contrast) below this share of the baseline."""
    moved_match: float = Field(0.6, ge=-1, lt=1)
    """Moved: the view correlates with the learned reference less than this (normalised
    correlation of thumbnails, over the part where no people are seen)..."""
    moved_shift: float = Field(0.05, gt=0, lt=1)
    """... or, correlating less than 0.9, it is shifted against the reference by more than
    this share of the frame width (phase correlation)."""


class CameraConfig(Section):
    id: str = Field(pattern=DEVICE_ID)
    """Device id of the camera."""
    url: str = Field(min_length=1)
    """Source: `rtsp://...`, `http://.../stream.mjpg` (multipart MJPEG) or a video file path."""
    floor: int | None = None
    """Floor the camera is on."""
    zone: str | None = None
    """Building zone the camera watches (e.g. `lobby`, `gate-lane-1`)."""
    enabled: bool = True
    """Whether this camera is analysed."""
    fps: float = Field(10.0, gt=0, le=60)
    """Frames analysed per second; faster sources are sampled down (skips are counted)."""
    width: int = Field(320, ge=80, le=1920)
    """Working width of the analysis in pixels (the height keeps the aspect ratio)."""
    person_width: float = Field(0.055, gt=0.005, lt=0.5)
    """Shoulder width of a person seen by this camera, as a share of the frame width."""
    threshold: float = Field(28.0, gt=0, le=255)
    """Colour difference (0-255) from the background that counts as foreground."""
    learn_s: float = Field(2.0, gt=0)
    """Seconds after (re)connecting spent learning the background and tamper baselines."""
    lines: list[LineConfig] = Field(default_factory=list)
    """Counting lines."""
    zones: list[ZoneConfig] = Field(default_factory=list)
    """Occupancy zones."""
    regions: list[RegionConfig] = Field(default_factory=list)
    """Motion regions."""
    masks: list[list[Point]] = Field(default_factory=list)
    """Polygons ignored by the people and motion analysis (trees, screens, windows)."""
    tamper: TamperConfig = TamperConfig()
    """Tamper detection."""
    report_interval_s: float = Field(10.0, gt=0)
    """Occupancy and motion are reported on change and at least this often."""
    stall_s: float = Field(5.0, gt=0, le=60)
    """No new frame for this long means the stream is lost: reported, and the capture
    process is killed and reopened."""
    open_timeout_s: float = Field(10.0, gt=0, le=120)
    """Longest wait for the first frame after starting the capture process (process start-up
    and opening the source included) before the stream counts as lost."""
    reopen_min_s: float = Field(1.0, gt=0)
    """First delay before reopening a lost stream; doubles up to `reopen_max_s`."""
    reopen_max_s: float = Field(30.0, gt=0)
    """Cap of the reopen delay."""
    loop: bool = False
    """Video files only: start again at the end (demos)."""
    realtime: bool = True
    """Video files only: deliver frames at the file's frame rate rather than as fast as
    they decode."""

    @field_validator("masks")
    @classmethod
    def _masks(cls, v: list[list[Point]]) -> list[list[Point]]:
        for poly in v:
            _check_points(poly, 3)
        return v

    @model_validator(mode="after")
    def _unique(self) -> CameraConfig:
        for what, names in (
            ("line", [x.name for x in self.lines]),
            ("zone", [x.name for x in self.zones]),
            ("region", [x.name for x in self.regions]),
        ):
            dup = {n for n in names if names.count(n) > 1}
            if dup:
                raise ValueError(f"camera {self.id!r}: {what} names repeat: {sorted(dup)}")
        if self.reopen_max_s < self.reopen_min_s:
            raise ValueError("reopen_max_s must be at least reopen_min_s")
        return self


class CamerasConfig(Section):
    enabled: bool = False
    """Whether camera analysis runs."""
    cameras: list[CameraConfig] = Field(default_factory=list)
    """The cameras."""
    snapshot_dir: Path | None = None
    """Where alarm snapshots are kept; default `snapshots/` next to the database."""
    snapshot_quality: int = Field(80, ge=10, le=100)
    """JPEG quality of snapshots."""
    snapshot_width: int = Field(640, ge=160, le=1920)
    """Snapshots are scaled down to at most this width."""

    @model_validator(mode="after")
    def _unique(self) -> CamerasConfig:
        ids = [c.id for c in self.cameras]
        dup = {i for i in ids if ids.count(i) > 1}
        if dup:
            raise ValueError(f"camera ids repeat: {sorted(dup)}")
        return self

    def catalog_entries(self) -> list[DeviceInfo]:
        from gateway.model import DeviceInfo, DeviceKind, MetricInfo  # noqa: PLC0415

        out: list[DeviceInfo] = []
        for cam in self.cameras:
            metrics = [MetricInfo(f"occupancy.{z.name}", "people") for z in cam.zones]
            metrics += [MetricInfo(f"motion.{r.name}", "ratio") for r in cam.regions]
            metrics += [MetricInfo("tamper", "bool", "1 while any tamper condition is on")]
            out.append(
                DeviceInfo(
                    id=cam.id,
                    kind=DeviceKind.CAMERA,
                    floor=cam.floor,
                    zone=cam.zone,
                    metrics=tuple(metrics),
                    labels={
                        "lines": ",".join(x.name for x in cam.lines),
                        "zones": ",".join(x.name for x in cam.zones),
                    },
                )
            )
        return out
