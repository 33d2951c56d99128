"""The body of a camera's capture process: decode, analyse at the configured rate, report.

Started with the `spawn` method, one process per camera, so the gateway can kill it whatever
OpenCV is blocked in. It imports OpenCV only here, inside the process; the gateway's own
process never loads it. Everything goes back over one pipe: `Opened`, then `Report`s and a
`Progress` heartbeat about once a second, or `Failed` when the source cannot be read.
"""

# ruff: noqa: PLC0415 -- OpenCV loads inside the capture process only, never in the gateway's.

from __future__ import annotations

import os
import time
from multiprocessing.connection import Connection

from collectors.camera.messages import Failed, Opened, Progress

PROGRESS_EVERY_S = 1.0


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def run(camera_json: str, snapshot_width: int, snapshot_quality: int, conn: Connection) -> None:
    """Process entry point. Returns (ending the process) when the source fails or ends, or
    when the gateway is gone."""
    from collectors.camera import capture, vision
    from collectors.camera.pipeline import Pipeline
    from gateway.config.cameras import CameraConfig

    vision.limit_threads()
    cam = CameraConfig.model_validate_json(camera_json)
    parent = os.getppid()
    grabber = capture.Grabber(cam.url, realtime=cam.realtime, loop=cam.loop)
    try:
        info = grabber.open()
    except capture.CaptureError as exc:
        conn.send(Failed(_now_ms(), str(exc)))
        return
    conn.send(Opened(_now_ms(), info.width, info.height, info.fps))
    grabber.start()
    pipe = Pipeline(cam, snapshot_width, snapshot_quality)
    period_ms = 1000.0 / cam.fps
    next_due_ms = 0.0
    analysed = rate_skipped = 0
    busy_ms = 0.0
    busy_n = 0
    last_progress = time.monotonic()
    try:
        while True:
            item = grabber.take(timeout=0.25)
            if item is not None:
                frame, ts_ms, _ = item
                if ts_ms + 0.5 < next_due_ms:
                    rate_skipped += 1
                else:
                    next_due_ms = max(next_due_ms + period_ms, ts_ms - period_ms)
                    started = time.perf_counter()
                    report = pipe.process(frame, ts_ms)
                    busy_ms += (time.perf_counter() - started) * 1000
                    busy_n += 1
                    analysed += 1
                    if report:
                        conn.send(report)
            elif grabber.ended is not None:
                conn.send(Failed(_now_ms(), grabber.ended))
                return
            now = time.monotonic()
            if now - last_progress >= PROGRESS_EVERY_S:
                if os.getppid() != parent:
                    return
                conn.send(
                    Progress(
                        ts_ms=_now_ms(),
                        frames=grabber.frames,
                        analysed=analysed,
                        skipped=grabber.skipped + rate_skipped,
                        last_frame_age_s=now - grabber.last_frame_mono,
                        analysis_ms=busy_ms / busy_n if busy_n else 0.0,
                    )
                )
                busy_ms, busy_n = 0.0, 0
                last_progress = now
    except (BrokenPipeError, EOFError, OSError):
        return
    finally:
        grabber.stop()
