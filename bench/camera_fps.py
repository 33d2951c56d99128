"""Cost of the camera analysis: analysis frames/s per core at 640×480 and 1280×720 input with
every analysis on (lines, zones, motion regions, masks, tamper), JPEG decoding separately,
and the memory of a real camera capture process.

CPU times are thread CPU time (`time.thread_time`), so other load on the machine inflates
them less than wall time would; each figure is the median of `--repeats` runs.

    .venv/bin/python bench/camera_fps.py [--quick]
"""

# ruff: noqa: PLC0415 -- OpenCV loads where it is measured.

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from collectors.camera import worker
from collectors.camera.messages import Progress
from collectors.camera.pipeline import Pipeline
from gateway.config.cameras import (
    CameraConfig,
    LineConfig,
    RegionConfig,
    ZoneConfig,
)
from simulators.camera.scene import SceneSpec, build_scene


def camera(url: str = "bench") -> CameraConfig:
    scene = build_scene(SceneSpec(seed=1))
    return CameraConfig(
        id="cam-bench",
        url=url,
        lines=[LineConfig(name="lane", a=scene.line[0], b=scene.line[1])],
        zones=[ZoneConfig(name="wait", polygon=scene.zone, crowd_threshold=15)],
        regions=[
            RegionConfig(name="door", polygon=[(0.0, 0.0), (0.5, 0.0), (0.5, 0.3), (0.0, 0.3)])
        ],
        masks=[[(0.9, 0.8), (1.0, 0.8), (1.0, 1.0), (0.9, 1.0)]],
        realtime=False,
        loop=True,
    )


def measure(width: int, height: int, frames: int, repeats: int) -> dict[str, Any]:
    import cv2

    from simulators.camera.render import Renderer

    cv2.setNumThreads(1)
    spec = SceneSpec(
        seed=42,
        width=width,
        height=height,
        duration_s=frames / 10 + 3,
        density=45,
        gatherings=(20,),
        warmup_s=2.0,
    )
    renderer = Renderer(build_scene(spec))
    jpegs = []
    for i in range(renderer.frame_count):
        _, buf = cv2.imencode(".jpg", renderer.frame(i), [cv2.IMWRITE_JPEG_QUALITY, 80])
        jpegs.append(buf)
    decode_ms: list[float] = []
    analysis_ms: list[float] = []
    decoded = [img for b in jpegs if (img := cv2.imdecode(b, cv2.IMREAD_COLOR)) is not None]
    learn = 30  # frames of background learning, not timed
    for _ in range(repeats):
        started = time.thread_time()
        for b in jpegs:
            cv2.imdecode(b, cv2.IMREAD_COLOR)
        decode_ms.append((time.thread_time() - started) * 1000 / len(jpegs))
        pipe = Pipeline(camera())
        for i, f in enumerate(decoded[:learn]):
            pipe.process(f, i * 100)
        started = time.thread_time()
        for i, f in enumerate(decoded[learn:], start=learn):
            pipe.process(f, i * 100)
        analysis_ms.append((time.thread_time() - started) * 1000 / (len(decoded) - learn))
    a = statistics.median(analysis_ms)
    d = statistics.median(decode_ms)
    return {
        "input": f"{width}x{height}",
        "working": f"{pipe.size[0]}x{pipe.size[1]}",
        "frames": len(decoded) - learn,
        "analysis_ms_per_frame": round(a, 3),
        "analysis_fps_per_core": round(1000 / a, 1),
        "decode_jpeg_ms_per_frame": round(d, 3),
        "decode_plus_analysis_fps_per_core": round(1000 / (a + d), 1),
        "cameras_at_10fps_per_core": round(1000 / (a + d) / 10, 1),
        "runs_ms": [round(x, 3) for x in analysis_ms],
    }


def _smaps(pid: int) -> dict[str, float]:
    fields: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[-1] == "kB":
            fields[name.strip()] = int(parts[0]) / 1024
    uss = fields.get("Private_Clean", 0.0) + fields.get("Private_Dirty", 0.0)
    return {
        "rss_mb": round(fields["Rss"], 1),
        "pss_mb": round(fields["Pss"], 1),
        "uss_mb": round(uss, 1),
    }


def _idle_cv2(conn: Any) -> None:
    import cv2
    import numpy

    conn.send((cv2.__version__, numpy.__version__))
    conn.recv()


def memory(seconds: float) -> dict[str, Any]:
    from simulators.camera.clip import write_clip

    ctx = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "mem.avi"
        write_clip(SceneSpec(seed=9, duration_s=20, density=30, gatherings=(15,)), clip)
        cam = camera(str(clip)).model_copy(update={"realtime": True})
        recv, send = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=worker.run, args=(cam.model_dump_json(), 640, 80, send))
        proc.start()
        send.close()
        idle_parent, idle_child = ctx.Pipe()
        idle = ctx.Process(target=_idle_cv2, args=(idle_child,))
        idle.start()
        idle_parent.recv()
        deadline = time.monotonic() + seconds
        last: Progress | None = None
        while time.monotonic() < deadline:
            if recv.poll(0.2):
                msg = recv.recv()
                if isinstance(msg, Progress):
                    last = msg
        assert proc.pid is not None
        assert idle.pid is not None
        worker_mem = _smaps(proc.pid)
        idle_mem = _smaps(idle.pid)
        proc.terminate()
        proc.join()
        idle_parent.send("bye")
        idle.join()
    return {
        "camera_process": worker_mem,
        "idle_process_with_cv2_numpy": idle_mem,
        "frames_decoded": last.frames if last else 0,
        "analysis_ms_in_process": round(last.analysis_ms, 3) if last else None,
        "note": "RSS counts the OpenCV/numpy libraries every process maps (shared pages); "
        "PSS shares them out among the processes mapping them; USS is what the camera "
        "process alone holds (what one more camera costs).",
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer frames and repeats")
    args = ap.parse_args()
    frames, repeats = (60, 3) if args.quick else (200, 5)
    started = time.perf_counter()
    results = [measure(640, 480, frames, repeats), measure(1280, 720, frames, repeats)]
    mem = memory(4.0 if args.quick else 8.0)
    vga = results[0]["analysis_ms_per_frame"]
    report = {
        "bench": "camera_fps",
        "seconds": round(time.perf_counter() - started, 1),
        "resolutions": results,
        "memory": mem,
        "targets": {
            "analysis_under_2ms_at_640x480": vga < 2.0,
            "memory_per_camera_under_60mb_uss": mem["camera_process"]["uss_mb"] < 60,
        },
    }
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
