"""Simulator-level commands: `campus-edge demo` runs a whole simulated building."""

from __future__ import annotations

import argparse

from gateway.commands import Commands


def _demo(args: argparse.Namespace) -> int:
    from simulators.demo import run_demo  # noqa: PLC0415 - the demo imports yaml and more

    return run_demo(seed=args.seed, speed=args.speed, workdir=args.workdir, duration=args.duration)


def register(commands: Commands) -> None:
    p = commands.top.add_parser(
        "demo", help="run a simulated dorm building end to end with the live cockpit"
    )
    p.add_argument("--seed", type=int, default=7, help="simulation seed (same seed, same run)")
    p.add_argument("--speed", type=float, default=60.0, help="simulated seconds per real second")
    p.add_argument("--workdir", default="var/demo", help="where the demo keeps its files")
    p.add_argument(
        "--duration", type=float, default=0.0, help="stop after this many seconds (0: until Ctrl-C)"
    )
    p.set_defaults(func=_demo)
