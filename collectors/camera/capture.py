"""Opening and reading a camera source with OpenCV: RTSP, HTTP MJPEG, or a video file.

With `vision.py`, the only modules that import cv2 (decoding here, pixel work there). This
runs inside a camera's own capture process (see `worker.py`): OpenCV's read can block for
ever on a dead RTSP stream, and the gateway's watchdog kills the process when that happens.
A reader thread decodes continuously into a one-frame slot; the analysis takes the newest
frame, and a frame replaced before it was taken is counted as skipped, so nothing queues up.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from cv2.typing import MatLike

Frame = MatLike

OPEN_TIMEOUT_MS = 5000
READ_TIMEOUT_MS = 5000


class CaptureError(Exception):
    """The source cannot be opened or read."""


def source_kind(url: str) -> str:
    lower = url.lower()
    if lower.startswith(("rtsp://", "rtsps://")):
        return "rtsp"
    if lower.startswith(("http://", "https://")):
        return "http"
    return "file"


@dataclass(frozen=True, slots=True)
class SourceInfo:
    width: int
    height: int
    fps: float
    kind: str


def _open(url: str) -> cv2.VideoCapture:
    kind = source_kind(url)
    if kind == "file" and not Path(url).is_file():
        raise CaptureError(f"video file {url!r} does not exist")
    # FFmpeg's own timeouts where the backend honours them; the watchdog is the guarantee.
    params = [
        cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
        OPEN_TIMEOUT_MS,
        cv2.CAP_PROP_READ_TIMEOUT_MSEC,
        READ_TIMEOUT_MS,
    ]
    cap = cv2.VideoCapture(url, cv2.CAP_FFMPEG, params)
    if not cap.isOpened():
        cap.release()
        raise CaptureError(f"OpenCV cannot open {kind} source {url!r}")
    return cap


class Grabber:
    """Decodes a source on a thread into a one-frame slot."""

    def __init__(self, url: str, *, realtime: bool = True, loop: bool = False) -> None:
        self.url = url
        self.kind = source_kind(url)
        self.realtime = realtime or self.kind != "file"
        self.loop = loop and self.kind == "file"
        self._cap: cv2.VideoCapture | None = None
        self._cond = threading.Condition()
        self._slot: tuple[Frame, int, int] | None = None
        self._seq = 0
        self.frames = 0
        self.skipped = 0
        self.ended: str | None = None
        self.last_frame_mono = time.monotonic()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._fps = 0.0
        self._start_ms = 0

    def open(self) -> SourceInfo:
        cap = _open(self.url)
        self._cap = cap
        ok, first = cap.read()
        if not ok or first is None:
            cap.release()
            raise CaptureError(f"{self.kind} source {self.url!r} opened but gave no frame")
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self._fps = fps if 0.5 < fps < 240 else 0.0
        self._start_ms = time.time_ns() // 1_000_000
        self._put(first, self._stamp(cap))
        h, w = first.shape[:2]
        return SourceInfo(w, h, self._fps, self.kind)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="grab", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop = True
        with self._cond:
            self._cond.notify_all()

    def take(self, timeout: float) -> tuple[Frame, int, int] | None:
        """The newest frame not taken yet (frame, timestamp ms, sequence number), or None."""
        with self._cond:
            if self._slot is None and self.ended is None:
                self._cond.wait(timeout)
            item, self._slot = self._slot, None
            self._cond.notify_all()
            return item

    def _stamp(self, cap: cv2.VideoCapture) -> int:
        if self.kind == "file":
            return self._start_ms + round(float(cap.get(cv2.CAP_PROP_POS_MSEC)))
        return time.time_ns() // 1_000_000

    def _put(self, frame: Frame, ts_ms: int) -> None:
        with self._cond:
            if self.kind == "file" and not self.realtime:
                # A file read as fast as it decodes is a batch job: wait, skip nothing.
                while self._slot is not None and not self._stop:
                    self._cond.wait(0.1)
            if self._slot is not None:
                self.skipped += 1
            self._seq += 1
            self._slot = (frame, ts_ms, self._seq)
            self.frames += 1
            self.last_frame_mono = time.monotonic()
            self._cond.notify_all()

    def _finish(self, reason: str) -> None:
        with self._cond:
            self.ended = reason
            self._cond.notify_all()

    def _run(self) -> None:
        cap = self._cap
        assert cap is not None
        period = 1.0 / self._fps if self._fps else 0.0
        next_at = time.monotonic() + period
        last_ts = self._start_ms
        try:
            while not self._stop:
                if self.realtime and self.kind == "file" and period:
                    delay = next_at - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    next_at = max(next_at + period, time.monotonic() - period)
                ok, frame = cap.read()
                if not ok or frame is None:
                    if self.loop and self.frames > 1:
                        cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                        self._start_ms = last_ts + round(period * 1000)
                        continue
                    self._finish("end of file" if self.kind == "file" else "stream ended")
                    return
                last_ts = self._stamp(cap)
                self._put(frame, last_ts)
        except cv2.error as exc:
            self._finish(f"decoding failed: {exc}")
        finally:
            cap.release()


def decode_jpeg(data: bytes) -> Frame | None:
    """Decodes one JPEG (used by the decode-cost benchmark)."""
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    return None if img is None else img
