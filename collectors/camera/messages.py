"""What a camera's analysis reports, and what its capture process sends to the gateway.

Plain picklable dataclasses: they cross the process boundary between a camera's capture
process and the gateway's event loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class CamEvent:
    kind: str
    """`camera.line_crossing`, `camera.tamper`, `camera.crowding`, `camera.motion`."""
    ts_ms: int
    data: dict[str, Any]
    snapshot: bytes | None = None
    """JPEG of the frame with lines and zones drawn, for alert-worthy events."""


@dataclass(frozen=True, slots=True)
class CamReading:
    metric: str
    ts_ms: int
    value: float


@dataclass(slots=True)
class Report:
    """What one analysed frame produced."""

    events: list[CamEvent] = field(default_factory=list)
    readings: list[CamReading] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.events or self.readings)


@dataclass(frozen=True, slots=True)
class Progress:
    """Sent by the capture process about once a second: the watchdog's heartbeat."""

    ts_ms: int
    frames: int
    """Frames decoded since the process started."""
    analysed: int
    skipped: int
    """Frames decoded but not analysed because the analysis was busy (or rate-limited)."""
    last_frame_age_s: float
    """Seconds since the last decoded frame, measured in the capture process."""
    analysis_ms: float
    """Mean analysis time per frame over the last period."""


@dataclass(frozen=True, slots=True)
class Opened:
    ts_ms: int
    width: int
    height: int
    source_fps: float


@dataclass(frozen=True, slots=True)
class Failed:
    """The source could not be opened, ended, or the capture failed."""

    ts_ms: int
    reason: str
