"""`campus-edge simulate camera serve|write`: simulated cameras with exact ground truth.

OpenCV is imported inside the command functions only, so the CLI starts fast.
"""

# ruff: noqa: PLC0415 -- OpenCV and the simulator load only when a command runs (fast CLI start).

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.commands import Commands


def _spec(args: argparse.Namespace) -> object:
    from simulators.camera.scene import SceneSpec, TamperSpec

    tampers = []
    for t in args.tamper or []:
        kind, start, end = t.split(":")
        if kind not in ("cover", "blur", "shift"):
            raise SystemExit(f"--tamper {t!r}: kind must be cover, blur or shift")
        tampers.append(TamperSpec(kind, float(start), float(end)))
    outages = []
    for o in args.outage or []:
        start, end = o.split(":")
        outages.append((float(start), float(end)))
    return SceneSpec(
        seed=args.seed,
        duration_s=args.duration,
        width=args.width,
        height=args.height,
        fps=args.fps,
        density=args.density,
        gatherings=tuple(args.gather or ()),
        lighting=args.lighting,
        noise_sigma=args.noise,
        tampers=tuple(tampers),
        outages=tuple(outages),
    )


def _serve(args: argparse.Namespace) -> int:
    from simulators.camera.clip import mjpeg_server
    from simulators.camera.scene import SceneSpec, build_scene

    spec = _spec(args)
    assert isinstance(spec, SceneSpec)
    server = mjpeg_server(spec, port=args.port, loop=not args.once).start()
    truth = build_scene(spec).ground_truth()
    if args.truth:
        Path(args.truth).write_text(json.dumps(truth, indent=1))
    print(f"serving {server.url} (seed {spec.seed}); Ctrl-C to stop", file=sys.stderr)
    server.serve_until(args.serve_for)
    server.stop()
    return 0


def _write(args: argparse.Namespace) -> int:
    from simulators.camera.clip import write_clip
    from simulators.camera.scene import SceneSpec

    spec = _spec(args)
    assert isinstance(spec, SceneSpec)
    truth = write_clip(spec, Path(args.out))
    print(json.dumps({"clip": args.out, "truth": str(truth)}))
    return 0


def _scene_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=1, help="same seed, same clip")
    p.add_argument("--duration", type=float, default=60.0, help="clip length in seconds")
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--fps", type=float, default=10.0)
    p.add_argument("--density", type=float, default=15.0, help="people crossing per minute")
    p.add_argument(
        "--gather", type=int, action="append", help="a gathering of N people in the zone"
    )
    p.add_argument("--lighting", choices=["steady", "drift", "switch"], default="steady")
    p.add_argument("--noise", type=float, default=3.0, help="sensor noise sigma (0-255)")
    p.add_argument("--tamper", action="append", help="KIND:START:END, KIND cover|blur|shift")
    p.add_argument("--outage", action="append", help="START:END seconds with no frames")


def register(commands: Commands) -> None:
    cam = commands.simulate.add_parser("camera", help="simulated cameras with ground truth")
    sub = cam.add_subparsers(dest="camera_command", required=True)
    serve = sub.add_parser("serve", help="serve a scene as HTTP MJPEG on loopback")
    _scene_args(serve)
    serve.add_argument("--port", type=int, default=8081)
    serve.add_argument("--once", action="store_true", help="play the clip once, do not loop")
    serve.add_argument("--serve-for", type=float, default=None, help="stop after N seconds")
    serve.add_argument("--truth", help="write the ground truth JSON here")
    serve.set_defaults(func=_serve)
    write = sub.add_parser("write", help="write a scene as a video file + truth JSON")
    _scene_args(write)
    write.add_argument("--out", required=True, help="video file to write (.avi)")
    write.set_defaults(func=_write)
