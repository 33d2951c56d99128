"""Accuracy of the camera analysis against the simulator's exact ground truth.

Renders clips (different seeds, densities, gatherings, lighting, tampering), runs each through
the same `Pipeline` the gateway runs, and compares: line crossings per direction, zone
occupancy (mean absolute error per analysed frame), tamper detection latency and false
tampers. Frames go from the renderer to the analysis in memory (optionally through JPEG, as
an MJPEG camera would deliver them); nothing is written unless `--write-clips DIR` is given
(keep that out of git: bench/out/ is ignored).

    .venv/bin/python bench/camera_accuracy.py [--quick] [--jpeg] [--write-clips bench/out]
"""

# ruff: noqa: PLC0415 -- OpenCV loads where it is used.

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from collectors.camera.pipeline import Pipeline
from gateway.config.cameras import CameraConfig, LineConfig, ZoneConfig
from simulators.camera.render import Renderer
from simulators.camera.scene import SceneSpec, TamperKind, TamperSpec, build_scene


def clip_specs(quick: bool) -> list[SceneSpec]:
    duration = 30.0 if quick else 60.0
    lights = ("steady", "drift", "switch")
    densities = (6.0, 15.0, 30.0, 45.0)
    gatherings: tuple[tuple[int, ...], ...] = ((), (8,), (15,), (20,), (12, 20))
    specs: list[SceneSpec] = []
    n_count = 8 if quick else 16
    for i in range(n_count):
        specs.append(
            SceneSpec(
                seed=100 + i,
                duration_s=duration,
                density=densities[i % len(densities)],
                gatherings=gatherings[i % len(gatherings)],
                lighting=lights[i % len(lights)],  # type: ignore[arg-type]
                noise_sigma=2.0 + (i % 3),
            )
        )
    kinds: tuple[TamperKind, ...] = ("cover", "blur", "shift")
    n_tamper = 4 if quick else 8
    for i in range(n_tamper):
        start = duration * 0.35
        specs.append(
            SceneSpec(
                seed=500 + i,
                duration_s=duration,
                density=(6.0, 20.0)[i % 2],
                gatherings=((), (10,))[i % 2],
                lighting=lights[i % len(lights)],  # type: ignore[arg-type]
                tampers=(TamperSpec(kinds[i % 3], start, start + duration * 0.3),),
            )
        )
    return specs


def camera_for(spec: SceneSpec) -> CameraConfig:
    scene = build_scene(spec)
    return CameraConfig(
        id="cam-sim",
        url="sim",
        fps=spec.fps,
        lines=[LineConfig(name="lane", a=scene.line[0], b=scene.line[1], snapshot=False)],
        zones=[ZoneConfig(name="wait", polygon=scene.zone, crowd_threshold=15)],
    )


def run_clip(spec: SceneSpec, jpeg: bool, write_dir: Path | None) -> dict[str, Any]:
    import cv2

    cv2.setNumThreads(1)

    scene = build_scene(spec)
    renderer = Renderer(scene)
    cam = camera_for(spec)
    pipe = Pipeline(cam)
    writer = None
    if write_dir is not None:
        write_dir.mkdir(parents=True, exist_ok=True)
        path = write_dir / f"clip-{spec.seed}.avi"
        fourcc = cv2.VideoWriter.fourcc(*"MJPG")
        writer = cv2.VideoWriter(str(path), fourcc, spec.fps, (spec.width, spec.height))
    counted = {"in": 0, "out": 0}
    abs_err: list[float] = []
    tamper_on: list[tuple[str, float]] = []
    t0 = 1_800_000_000_000
    analysis_s = 0.0
    for i, frame in renderer.frames():
        t = i / spec.fps
        if writer is not None:
            writer.write(frame)
        if jpeg:
            _, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 80])
            decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR)
            assert decoded is not None
            frame = decoded  # noqa: PLW2901
        started = time.thread_time()
        report = pipe.process(frame, t0 + round(t * 1000))
        analysis_s += time.thread_time() - started
        for ev in report.events:
            if ev.kind == "camera.line_crossing":
                counted[ev.data["direction"]] += ev.data["count"]
            elif ev.kind == "camera.tamper" and ev.data["state"] == "on":
                tamper_on.append((ev.data["type"], t))
        seen = pipe.zones[0].last_value if pipe.zones else None
        if seen is not None and scene.visible(t) and not pipe.blind and t >= spec.warmup_s:
            abs_err.append(abs(seen - scene.occupancy(t)))
    if writer is not None:
        writer.release()
    truth = scene.ground_truth()
    crossings = truth["crossings"]
    assert isinstance(crossings, dict)
    out: dict[str, Any] = {
        "seed": spec.seed,
        "density_per_min": spec.density,
        "gatherings": list(spec.gatherings),
        "lighting": spec.lighting,
        "occupancy_max_truth": truth["occupancy_max"],
        "in": {"truth": crossings["in"], "counted": counted["in"]},
        "out": {"truth": crossings["out"], "counted": counted["out"]},
        "occupancy_mae": round(statistics.fmean(abs_err), 3) if abs_err else None,
        "analysis_cpu_ms_per_frame": round(analysis_s * 1000 / renderer.frame_count, 3),
    }
    for d in ("in", "out"):
        truth_n, got = out[d]["truth"], out[d]["counted"]
        out[d]["error"] = round(abs(got - truth_n) / truth_n, 4) if truth_n else float(got > 0)
    tampers = []
    for tp in spec.tampers:
        expected = {"cover": "covered", "blur": "defocused", "shift": "moved"}[tp.kind]
        hits = [t for kind, t in tamper_on if kind == expected and tp.start_s <= t <= tp.end_s]
        tampers.append(
            {
                "injected": tp.kind,
                "start_s": tp.start_s,
                "detected_after_s": round(hits[0] - tp.start_s, 2) if hits else None,
            }
        )
    out["tampers"] = tampers
    out["tamper_reports"] = [{"type": k, "t": round(t, 1)} for k, t in tamper_on]
    out["false_tampers"] = sum(
        1
        for kind, t in tamper_on
        if not any(tp.start_s <= t <= tp.end_s + 1 for tp in spec.tampers)
    )
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="12 clips of 30 s instead of 24 of 60 s")
    ap.add_argument("--jpeg", action="store_true", help="pass frames through JPEG (MJPEG-like)")
    ap.add_argument("--write-clips", type=Path, default=None, help="also write clips as AVI here")
    ap.add_argument("--seed", type=int, action="append", help="only these clip seeds")
    ap.add_argument("--jobs", type=int, default=2, help="clips analysed in parallel")
    args = ap.parse_args()
    specs = clip_specs(args.quick)
    if args.seed:
        specs = [s for s in specs if s.seed in args.seed]
    started = time.perf_counter()
    if args.jobs > 1:
        import multiprocessing

        with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
            clips = pool.starmap(run_clip, [(s, args.jpeg, args.write_clips) for s in specs])
    else:
        clips = [run_clip(s, args.jpeg, args.write_clips) for s in specs]
    counting = [c for c in clips if not c["tampers"]]
    summary: dict[str, Any] = {}
    for d in ("in", "out"):
        truth_n = sum(c[d]["truth"] for c in counting)
        got = sum(c[d]["counted"] for c in counting)
        summary[f"crossings_{d}"] = {
            "truth": truth_n,
            "counted": got,
            "error_overall": round(abs(got - truth_n) / truth_n, 4) if truth_n else None,
            "error_worst_clip": max(c[d]["error"] for c in counting),
        }
    maes = [c["occupancy_mae"] for c in counting if c["occupancy_mae"] is not None]
    summary["occupancy_mae_mean"] = round(statistics.fmean(maes), 3)
    summary["occupancy_mae_worst_clip"] = max(maes)
    summary["occupancy_max_truth"] = max(c["occupancy_max_truth"] for c in counting)
    injected = [t for c in clips for t in c["tampers"]]
    summary["tamper_injected"] = len(injected)
    summary["tamper_found_within_10s"] = sum(
        1 for t in injected if t["detected_after_s"] is not None and t["detected_after_s"] <= 10
    )
    summary["tamper_latency_s_max"] = max(
        (t["detected_after_s"] for t in injected if t["detected_after_s"] is not None), default=None
    )
    summary["false_tampers"] = sum(c["false_tampers"] for c in clips)
    summary["analysis_cpu_ms_per_frame_median"] = statistics.median(
        c["analysis_cpu_ms_per_frame"] for c in clips
    )
    summary["targets_met"] = {
        "crossings_overall_within_5pct": all(
            (summary[f"crossings_{d}"]["error_overall"] or 0) <= 0.05 for d in ("in", "out")
        ),
        "no_clip_over_10pct": all(
            summary[f"crossings_{d}"]["error_worst_clip"] <= 0.10 for d in ("in", "out")
        ),
        "occupancy_mae_below_1": summary["occupancy_mae_worst_clip"] < 1.0,
        "every_tamper_within_10s": summary["tamper_found_within_10s"] == len(injected),
        "no_false_tamper": summary["false_tampers"] == 0,
    }
    report = {
        "bench": "camera_accuracy",
        "clips": len(clips),
        "jpeg": args.jpeg,
        "jobs": args.jobs,
        "seconds": round(time.perf_counter() - started, 1),
        "summary": summary,
        "per_clip": clips,
    }
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
