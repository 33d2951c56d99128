"""Simulated camera clips as files and as MJPEG servers, with their ground truth as JSON."""

from __future__ import annotations

import json
from pathlib import Path

import cv2

from simulators.camera.mjpeg import MjpegServer
from simulators.camera.render import Renderer
from simulators.camera.scene import SceneSpec, build_scene


def write_clip(spec: SceneSpec, path: Path, quality: int = 85) -> Path:
    """Writes the clip (Motion-JPEG in AVI: every OpenCV build reads and writes it) and its
    ground truth next to it (`<name>.truth.json`). Returns the truth file's path."""
    scene = build_scene(spec)
    renderer = Renderer(scene)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(
        str(path), cv2.VideoWriter.fourcc(*"MJPG"), spec.fps, (spec.width, spec.height)
    )
    if not writer.isOpened():
        raise OSError(f"cannot write video file {path}")
    writer.set(cv2.VIDEOWRITER_PROP_QUALITY, quality)
    try:
        for _, frame in renderer.frames():
            if scene.in_outage(_ / spec.fps):
                continue  # a file has no outage: those frames are simply missing
            writer.write(frame)
    finally:
        writer.release()
    truth = path.with_suffix(".truth.json")
    truth.write_text(json.dumps(scene.ground_truth(), indent=1))
    return truth


def mjpeg_server(
    spec: SceneSpec,
    *,
    port: int = 0,
    loop: bool = True,
    stop_after_s: float | None = None,
    never_start: bool = False,
    quality: int = 80,
) -> MjpegServer:
    """A server (not started) streaming the clip; outages in the spec stall the stream."""
    scene = build_scene(spec)
    renderer = Renderer(scene)

    def jpeg(i: int) -> bytes:
        ok, buf = cv2.imencode(".jpg", renderer.frame(i), [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise ValueError("JPEG encoding failed")
        return bytes(buf.tobytes())

    return MjpegServer(
        jpeg,
        renderer.frame_count,
        spec.fps,
        stalled=lambda i: scene.in_outage(i / spec.fps),
        loop=loop,
        port=port,
        stop_after_s=stop_after_s,
        never_start=never_start,
    )
